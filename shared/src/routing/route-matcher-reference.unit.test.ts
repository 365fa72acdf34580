import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type RouteConfig, routeConfig } from '../domain/gateway-config.js';
import type { MatchFacts } from './match-conditions.js';
import { normalizePath } from './normalize-path.js';
import { type MatchRequest, RouteMatcher } from './route-matcher.js';

/**
 * RouteMatcher's `match` and `evaluate` against a matcher written from the documented rules alone
 * (README "Route policies", docs/path-matching.md §5): every route filtered by its pattern, methods and
 * conditions, then ordered by priority, path specificity, condition count, method count and snapshot
 * order. The matcher keeps patterns in compact forms and files routes by first segment and condition
 * value; none of that may change which route a request reaches.
 */

const SEED = 20_261_206;
const CASES = 300;

// ---- the reference ----

type Kind = 'literal' | 'param' | 'prefix' | 'wildcard';

/** A pattern's segments, normalised as a request path is (escapes, dot segments, duplicate slashes). */
function patternParts(pattern: string): string[] {
  const normalized = normalizePath(pattern, 'keep');
  if (!normalized.ok) throw new Error(`test generated an invalid pattern ${pattern}`);
  return normalized.path === '/' ? [] : normalized.path.slice(1).split('/');
}

function kindOf(part: string): Kind {
  if (part === '*') return 'wildcard';
  if (part.endsWith('*')) return 'prefix';
  if (part.startsWith(':')) return 'param';
  return 'literal';
}

/** One part of a pattern against one path segment: a literal as written, a `:param` any non-empty one. */
function partMatches(part: string, segment: string): boolean {
  return kindOf(part) === 'param' ? segment !== '' : part === segment;
}

function patternMatches(parts: readonly string[], path: string): boolean {
  const segments = path.slice(1).split('/');
  if (parts.length === 0) return path === '/';
  const last = parts[parts.length - 1]!;
  const head = parts.slice(0, -1);
  const headMatches = head.every((part, i) => i < segments.length && partMatches(part, segments[i]!));
  switch (kindOf(last)) {
    case 'wildcard': // `/api/*`: `/api` itself and anything below it
      return segments.length >= head.length && headMatches;
    case 'prefix': // `/v1*`: a string prefix of the segment, whatever follows
      return (
        segments.length >= parts.length && headMatches && segments[head.length]!.startsWith(last.slice(0, -1))
      );
    default:
      return segments.length === parts.length && headMatches && partMatches(last, segments[head.length]!);
  }
}

/**
 * Specificity, segment by segment: a literal, then a `:param`, then a string prefix, then `*`. A pattern
 * that ends where another continues comes after it unless the other continues with `*` (`/api` before
 * `/api/*`, `/api/x` before `/api`).
 */
const SPECIFICITY: Record<Kind | 'end', number> = { literal: 4, param: 3, prefix: 2, end: 1, wildcard: 0 };

function compareSpecificity(a: readonly string[], b: readonly string[]): number {
  for (let i = 0; i <= Math.max(a.length, b.length); i++) {
    const rankOf = (parts: readonly string[]) =>
      i < parts.length ? SPECIFICITY[kindOf(parts[i]!)] : SPECIFICITY.end;
    const difference = rankOf(b) - rankOf(a);
    if (difference !== 0 || (i >= a.length && i >= b.length)) return difference;
  }
  return 0;
}

function methodAdmits(methods: readonly string[], method: string): boolean {
  if (methods.length === 0) return method !== 'TRACE' && method !== 'TRACK';
  return methods.some((listed) => listed.toUpperCase() === method);
}

function conditionCount(config: RouteConfig): number {
  const match = config.match;
  if (match === null || match === undefined) return 0;
  return (
    (match.hosts.length > 0 ? 1 : 0) +
    (match.scheme !== undefined ? 1 : 0) +
    match.headers.length +
    match.query.length
  );
}

interface Condition {
  readonly exact?: string | undefined;
  readonly prefix?: string | undefined;
  readonly present?: boolean | undefined;
}

/** Whether a condition holds for a field's values (empty: not sent): any value meets exact or prefix. */
function conditionHolds(condition: Condition, values: readonly string[]): boolean {
  if (condition.exact !== undefined) return values.includes(condition.exact);
  if (condition.prefix !== undefined) return values.some((value) => value.startsWith(condition.prefix!));
  return condition.present === false ? values.length === 0 : values.length > 0;
}

/** A CORS preflight (`preflight`) carries none of the actual request's headers: its header conditions are skipped. */
function conditionsHold(config: RouteConfig, facts: MatchFacts | undefined, preflight: boolean): boolean {
  if (conditionCount(config) === 0) return true;
  if (facts === undefined) return false;
  const match = config.match!;
  const headers = facts.req.headers;
  const host = (headers.host ?? '').toLowerCase().replace(/:\d*$/, '').replace(/\.$/, '');
  if (match.hosts.length > 0 && !match.hosts.some((allowed) => allowed.toLowerCase() === host)) return false;
  if (match.scheme !== undefined && facts.scheme !== match.scheme) return false;
  for (const condition of preflight ? [] : match.headers) {
    const value = headers[condition.name.toLowerCase()];
    if (!conditionHolds(condition, typeof value === 'string' ? [value] : [])) return false;
  }
  const pairs = facts.query
    .slice(1)
    .split('&')
    .filter((pair) => pair !== '')
    .map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]);
  for (const condition of match.query) {
    const values = pairs.filter(([name]) => name === condition.name).map(([, value]) => value!);
    if (!conditionHolds(condition, values)) return false;
  }
  return true;
}

interface Route {
  readonly config: RouteConfig;
}

/** Every route in the documented match order. */
function referenceOrder(routes: readonly Route[]): Route[] {
  const parts = new Map(routes.map((route) => [route, patternParts(route.config.path_pattern)]));
  const order = new Map(routes.map((route, i) => [route, i]));
  const breadth = (config: RouteConfig) =>
    config.methods.length === 0
      ? Number.POSITIVE_INFINITY
      : new Set(config.methods.map((m) => m.toUpperCase())).size;
  return [...routes].sort(
    (a, b) =>
      b.config.priority - a.config.priority ||
      compareSpecificity(parts.get(a)!, parts.get(b)!) ||
      conditionCount(b.config) - conditionCount(a.config) ||
      breadth(a.config) - breadth(b.config) ||
      order.get(a)! - order.get(b)!,
  );
}

function referenceMatch(ordered: readonly Route[], method: string, path: string, request: MatchRequest) {
  return ordered.find(
    (route) =>
      patternMatches(patternParts(route.config.path_pattern), path) &&
      methodAdmits(route.config.methods, method) &&
      conditionsHold(route.config, request.facts, request.preflight),
  );
}

// ---- what is generated ----

/**
 * Literal segments, some spelled like other kinds once escaped (`%3A`, `%2A`), some that normalisation
 * rewrites (`%61` is `a`), in either case, escaped beyond ASCII, with `;` and `~`.
 */
const WORDS = [
  'a',
  'b',
  'A',
  'api',
  'Api',
  'v1',
  '%3Aid',
  'x%2A',
  '%C3%A9',
  '%C3%89',
  '%61',
  'a;b',
  '~u',
  'a.b',
];
const DEEP_WORDS = ['a', 'b', 'A'];
const PARAMS = [':id', ':p', ':Q'];
const SHARDS = ['1', '2', '3', '4', '5', '6', '7', '8'];
const HOSTS = ['a.example.com', 'b.example.com', 'c.example.com'];
const SHARD_HOSTS = SHARDS.map((shard) => `s${shard}.example.com`);
const HEADER_NAMES = ['x-shard', 'x-a', 'X-Tier'];
const QUERY_NAMES = ['v', 'w'];
const VALUES = [...SHARDS, 'a', 'A', 'ab'];
const METHODS = ['GET', 'POST', 'DELETE', 'TRACE', 'HEAD', 'PATCH'];

const segmentArb = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...WORDS) },
  { weight: 2, arbitrary: fc.constantFrom(...PARAMS) },
);
const deepSegmentArb = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom(...DEEP_WORDS) },
  { weight: 1, arbitrary: fc.constant(':d') },
);
/** What ends a pattern: nothing, `/*`, a string prefix (`abc*`, `:x*`), a trailing slash. */
const tailArb = fc.constantFrom('', '', '/*', '/*', '*', '/:x*', '/', '/%3A*');

const patternArb = fc
  .tuple(
    fc.oneof(
      { weight: 5, arbitrary: fc.array(segmentArb, { maxLength: 4 }) },
      { weight: 1, arbitrary: fc.array(deepSegmentArb, { minLength: 20, maxLength: 120, size: 'max' }) },
    ),
    tailArb,
  )
  .map(([segments, tail]) => {
    const body = `/${segments.join('/')}`;
    if (tail === '*') return segments.length === 0 ? '/*' : `${body}*`;
    if (tail === '/' || tail === '') return segments.length === 0 ? '/' : `${body}${tail}`;
    return segments.length === 0 ? tail : `${body}${tail}`;
  });

const conditionArb = <Name extends string>(names: readonly Name[]) =>
  fc.oneof(
    {
      weight: 4,
      arbitrary: fc.record({ name: fc.constantFrom(...names), exact: fc.constantFrom(...VALUES) }),
    },
    {
      weight: 1,
      arbitrary: fc.record({ name: fc.constantFrom(...names), prefix: fc.constantFrom('a', '1') }),
    },
    { weight: 1, arbitrary: fc.record({ name: fc.constantFrom(...names), present: fc.boolean() }) },
  );

/** No conditions, or hosts, headers, query and scheme together. */
const matchArb = fc.option(
  fc.record({
    hosts: fc.subarray(HOSTS),
    headers: fc.array(conditionArb(HEADER_NAMES), { maxLength: 3 }),
    query: fc.array(conditionArb(QUERY_NAMES), { maxLength: 2 }),
    scheme: fc.option(fc.constantFrom('http', 'https'), { nil: undefined }),
  }),
  { nil: null, freq: 3 },
);

/**
 * The field a case's routes are told apart by, each by a value of its own (`shard`): routes of a path
 * told apart by one field are filed by its value.
 */
type ShardField = 'host' | 'header' | 'query';

function shardMatch(field: ShardField, shard: string) {
  if (field === 'host') return { hosts: [`s${shard}.example.com`] };
  if (field === 'header') return { headers: [{ name: 'x-shard', exact: shard }] };
  return { query: [{ name: 'v', exact: shard }] };
}

/** A route by the index of its pattern among a few (so that patterns repeat), with what else it matches. */
const routeArb = fc.record({
  pattern: fc.nat(),
  priority: fc.constantFrom(-1, 0, 0, 0, 1, 5),
  methods: fc.array(fc.constantFrom('GET', 'get', 'POST', 'DELETE', 'TRACE'), { maxLength: 3 }),
  match: matchArb,
  shard: fc.option(fc.constantFrom(...SHARDS), { nil: null, freq: 2 }),
});

/** A request: a path made from one route's pattern (or from words alone), method, headers and query. */
const requestArb = fc.record({
  fromRoute: fc.option(fc.nat(), { freq: 4 }),
  fill: fc.array(fc.constantFrom(...WORDS, ':id', '*', 'ab*', ''), { minLength: 1, maxLength: 6 }),
  mutate: fc.option(fc.nat(), { freq: 2 }),
  trailingSlash: fc.boolean(),
  method: fc.constantFrom(...METHODS),
  facts: fc.option(
    fc.record({
      host: fc.option(
        fc.constantFrom(...HOSTS, ...SHARD_HOSTS, 'A.Example.com', 'S2.example.com:8443', 'c.example.com.'),
        {
          nil: undefined,
          freq: 6,
        },
      ),
      shard: fc.option(fc.constantFrom(...SHARDS), { nil: undefined, freq: 4 }),
      headers: fc.array(fc.tuple(fc.constantFrom('x-a', 'x-tier'), fc.constantFrom(...VALUES)), {
        maxLength: 2,
      }),
      query: fc.array(fc.tuple(fc.constantFrom(...QUERY_NAMES), fc.constantFrom(...VALUES)), {
        maxLength: 3,
      }),
      scheme: fc.option(fc.constantFrom('http', 'https'), { nil: undefined }),
      preflight: fc.boolean(),
    }),
    { nil: undefined, freq: 5 },
  ),
});

type RequestCase = typeof requestArb extends fc.Arbitrary<infer Value> ? Value : never;
type RouteCase = typeof routeArb extends fc.Arbitrary<infer Value> ? Value : never;

/** A path a route's pattern matches, filled with `fill`, sometimes with one segment changed. */
function pathFrom(pattern: string, request: RequestCase): string {
  const fill = request.fill;
  const take = (i: number) => fill[i % fill.length]!;
  const segments: string[] = [];
  patternParts(pattern).forEach((part, i) => {
    const kind = kindOf(part);
    if (kind === 'literal') segments.push(part);
    else if (kind === 'param') segments.push(take(i) === '' ? 'p' : take(i));
    else if (kind === 'prefix') segments.push(`${part.slice(0, -1)}${take(i)}`);
    else segments.push(...fill.slice(0, i % (fill.length + 1)));
  });
  if (request.mutate !== null && segments.length > 0) {
    const at = request.mutate % segments.length;
    segments[at] = take(request.mutate);
  }
  return `/${segments.join('/')}${request.trailingSlash ? '/' : ''}`;
}

function requestOf(request: RequestCase): MatchRequest {
  if (request.facts === undefined) return { facts: undefined, preflight: false };
  const { host, shard, headers, query, scheme, preflight } = request.facts;
  const sent: IncomingHttpHeaders = {};
  if (host !== undefined) sent.host = host;
  if (shard !== undefined) sent['x-shard'] = shard;
  for (const [name, value] of headers) sent[name] = value;
  const queryString =
    query.length === 0 ? '' : `?${query.map(([name, value]) => `${name}=${value}`).join('&')}`;
  return { facts: { req: { headers: sent }, query: queryString, scheme }, preflight };
}

const caseArb = fc.record({
  patterns: fc.array(patternArb, { minLength: 1, maxLength: 6 }),
  routes: fc.array(routeArb, { minLength: 1, maxLength: 40, size: 'max' }),
  shardField: fc.constantFrom<ShardField>('host', 'header', 'query'),
  requests: fc.array(requestArb, { minLength: 1, maxLength: 12 }),
});

function routesOf(
  patterns: readonly string[],
  routes: readonly RouteCase[],
  shardField: ShardField,
): Route[] {
  return routes.map((route) => ({
    config: routeConfig.parse({
      id: randomUUID(),
      origin_id: randomUUID(),
      path_pattern: patterns[route.pattern % patterns.length],
      auth_mode: 'public',
      priority: route.priority,
      methods: route.methods,
      match: route.shard === null ? route.match : shardMatch(shardField, route.shard),
    }),
  }));
}

describe('RouteMatcher against the documented match order', () => {
  it('match and evaluate find what filtering every route and ordering them as documented finds', () => {
    fc.assert(
      fc.property(caseArb, ({ patterns, routes: generated, shardField, requests }) => {
        const routes = routesOf(patterns, generated, shardField);
        const matcher = new RouteMatcher(routes);
        const ordered = referenceOrder(routes);
        const indexOf = (route: Route | undefined) => (route === undefined ? -1 : routes.indexOf(route));
        for (const request of requests) {
          const raw =
            request.fromRoute === null
              ? `/${request.fill.join('/')}`
              : pathFrom(routes[request.fromRoute % routes.length]!.config.path_pattern, request);
          const normalized = normalizePath(raw, 'keep');
          if (!normalized.ok) continue;
          const path = normalized.path;
          const matchRequest = requestOf(request);
          const expected = referenceMatch(ordered, request.method, path, matchRequest);
          expect({
            path,
            method: request.method,
            route: indexOf(matcher.match(request.method, path, matchRequest)),
          }).toEqual({
            path,
            method: request.method,
            route: indexOf(expected),
          });
          const evaluated = matcher.evaluate(request.method, path).map((evaluation) => ({
            route: indexOf(evaluation.route),
            rank: evaluation.rank,
            methodMatches: evaluation.methodMatches,
            pathMatches: evaluation.pathMatches,
          }));
          expect(evaluated).toEqual(
            ordered.map((route, rank) => ({
              route: indexOf(route),
              rank,
              methodMatches: methodAdmits(route.config.methods, request.method),
              pathMatches: patternMatches(patternParts(route.config.path_pattern), path),
            })),
          );
        }
      }),
      { seed: SEED, numRuns: CASES },
    );
  });
});
