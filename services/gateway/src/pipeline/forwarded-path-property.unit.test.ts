import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pathDigest } from '@vantageedge/shared/gateway-policies/cache-key';
import type { CompiledCachePolicy } from '@vantageedge/shared/gateway-policies/compile-cache-policy';
import { limitKey } from '@vantageedge/shared/gateway-policies/compile-rate-limits';
import {
  type EncodedSlashPolicy,
  normalizePath,
  queryRefusal,
} from '@vantageedge/shared/routing/normalize-path';
import { AmbiguousPath } from '@vantageedge/shared/routing/route-matcher';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createCacheStage } from '../cache/cache-stage.js';
import type { ResponseCache } from '../cache/response-cache.js';
import type { CompiledRoute, CompiledTenant } from '../config/compiled-tenant.js';
import { GatewayConfigStore } from '../config/gateway-config-store.js';
import { createRateLimitStage } from '../ratelimit/rate-limit-stage.js';
import type { RateLimiter } from '../ratelimit/rate-limiter.js';
import { buildSnapshot, type TestRoute } from '../testing/snapshots.js';
import { createRequestTransformPolicy } from '../transforms/transform-stages.js';
import { GatewayExchange } from './exchange.js';
import { originPath } from './origin-request.js';

/**
 * A seeded differential test of what the gateway decides on a request path against what its origin
 * then reads, through the gateway's own route stages (request transform, rate limit, cache) on a
 * compiled tenant. Hostile request targets (escapes, double escapes, overlong UTF-8, encoded dots,
 * slashes and backslashes, `;` parameters, duplicate slashes, trailing dots and spaces, NUL, Unicode
 * that NFKC maps onto `.` or `/`, encoded `?` and `#`, long segments) are matched, and every accepted one
 * must satisfy:
 *  (a) the path forwarded to the origin reads the same to an origin parsing it with WHATWG URL (node's
 *      `new URL`) and to one that percent-decodes it once and then removes dot segments (RFC 3986
 *      §5.2.4); it lies under the prefix the matched route forwards to; a route that forwards the path as
 *      it is would be chosen again for that reading; and, for such a route, no lenient origin reading of
 *      it (letters in any case, also beyond ASCII; `;` parameters dropped; decoded once) lies under a
 *      key-protected prefix unless a key-protected route handles it;
 *  (b) the cache key and the rate-limit keys are functions of the normalised path: every respelling of
 *      a target (escaped unreserved characters, hex case, `./`, `x/../`, `//`) gets the same route, the
 *      same keys and the same forwarded path, and two targets whose forwarded paths differ never share a
 *      cache key;
 *  (c) normalisation is idempotent: the normalised path normalises to itself.
 * Refused targets must be refused whatever their spelling. Seeded: the same cases every run.
 */
const SEED = 20_261_204;
const CASES = Number(process.env['FORWARDED_PATH_CASES'] ?? 4_000);
const ORIGIN_BASE = 'http://origin.invalid';

// ---- the tenant ----

/** A route and the prefix (as forwarded, no trailing slash) its origin must receive paths under. */
interface RouteSpec {
  route: TestRoute & { id: string };
  keyed: boolean;
  forwardsUnder: (path: string) => string;
  /** The route hands the path to its origin unchanged. */
  forwardsAsIs: boolean;
  /** The prefix is a string prefix (`/files*` also takes `/filesx`), not whole segments. */
  stringPrefix: boolean;
}

function routeSpecs(originId: string): RouteSpec[] {
  const spec = (
    route: Omit<TestRoute, 'origin_id'>,
    forwardsUnder: string | ((path: string) => string),
    options: { keyed?: boolean; asIs?: boolean; stringPrefix?: boolean } = {},
  ): RouteSpec => ({
    route: { id: randomUUID(), origin_id: originId, ...route },
    keyed: options.keyed ?? false,
    forwardsUnder: typeof forwardsUnder === 'string' ? () => forwardsUnder : forwardsUnder,
    forwardsAsIs: options.asIs ?? true,
    stringPrefix: options.stringPrefix ?? false,
  });
  return [
    spec({ path_pattern: '/pub/*', cache_policy: { ttl_seconds: 30 } }, '/pub'),
    spec({ path_pattern: '/pub/admin/*', auth_mode: 'apikey_required' }, '/pub/admin', { keyed: true }),
    spec({ path_pattern: '/admin/*', auth_mode: 'apikey_required' }, '/admin', { keyed: true }),
    spec(
      {
        path_pattern: '/strip/*',
        strip_prefix: '/strip',
        cache_policy: { ttl_seconds: 30 },
        rate_limit: { requests_per_second: 5, scope: 'ip' },
      },
      '/',
      { asIs: false },
    ),
    spec(
      {
        path_pattern: '/legacy/*',
        rewrite_path: { from_prefix: '/legacy', to_prefix: '/v2' },
        cache_policy: { ttl_seconds: 30 },
      },
      '/v2',
      { asIs: false },
    ),
    spec(
      {
        path_pattern: '/users/:id/*',
        rewrite_path: { template: '/accounts/:id/*' },
        cache_policy: { ttl_seconds: 30 },
      },
      (path) => `/accounts/${path.split('/')[2]!}`,
      { asIs: false },
    ),
    spec({ path_pattern: '/files*', rate_limit: { requests_per_second: 5, scope: 'ip' } }, '/files', {
      stringPrefix: true,
    }),
    spec({ path_pattern: '/caf%C3%A9/*', cache_policy: { ttl_seconds: 30 } }, '/caf%C3%A9'),
    spec({ path_pattern: '/%C3%A9t%C3%A9/*', auth_mode: 'apikey_required' }, '/%C3%A9t%C3%A9', {
      keyed: true,
    }),
    spec({ path_pattern: '/*', cache_policy: { ttl_seconds: 30 } }, '/'),
  ];
}

const KEYED_PREFIXES = ['/pub/admin', '/admin', '/%C3%A9t%C3%A9'];

interface Recorded {
  cacheKey?: string;
  limitKeys: string[];
}

/** A cache that records the key a lookup asks for, and bypasses (the origin is asked). */
function recordingCache(recorded: { current: Recorded }): ResponseCache {
  return {
    prepareTenant: async () => {},
    tenantRemoved: () => {},
    tenantBoundChanged: async () => {},
    routeRetired: () => {},
    lookup(policy: CompiledCachePolicy, request: { path: string; query: string }) {
      recorded.current.cacheKey = `${policy.routeId}:${pathDigest(request.path)}:${request.query}`;
      return { outcome: 'BYPASS', reason: 'recorded' };
    },
  } as unknown as ResponseCache;
}

/** A limiter that records each limit's key for the caller and allows the request. */
function recordingLimiter(recorded: { current: Recorded }): RateLimiter {
  return {
    storeDegraded: false,
    checkNow(
      limits: { descriptors: Parameters<typeof limitKey>[0][] },
      caller: Parameters<typeof limitKey>[1],
    ) {
      recorded.current.limitKeys = limits.descriptors.map((descriptor) => limitKey(descriptor, caller));
      return { outcome: 'allowed', headers: [] };
    },
  } as unknown as RateLimiter;
}

function compiledTenant(specs: RouteSpec[], originId: string, recorded: { current: Recorded }) {
  const store = new GatewayConfigStore({
    baseDomains: ['localhost'],
    createUpstreamSet: () => ({ acquire: () => undefined, close: async () => {} }),
  });
  store.setPipeline({
    // In the gateway's order (gateway-handler routePolicies): the transform, then the given stages.
    policies: [
      createRequestTransformPolicy(),
      createRateLimitStage(recordingLimiter(recorded)),
      createCacheStage(recordingCache(recorded)),
    ],
  });
  store.apply(
    buildSnapshot({
      subdomain: 'acme',
      origins: [{ id: originId, targets: ['http://127.0.0.1:1'] }],
      routes: specs.map((spec) => spec.route),
    }),
  );
  return store.resolveHost('acme.localhost')!;
}

// ---- what the gateway does with a request target ----

type Outcome =
  | { kind: 'refused'; status: 400 }
  | { kind: 'unmatched' | 'ambiguous'; path: string }
  | {
      kind: 'forwarded';
      path: string;
      route: CompiledRoute;
      forwarded: string;
      cacheKey: string | undefined;
      limitKeys: string[];
    };

/** The gateway's steps for a request target (gateway-handler: normalise, match, run the route's stages). */
function serve(
  tenant: CompiledTenant,
  recorded: { current: Recorded },
  target: string,
  encodedSlashes: EncodedSlashPolicy,
): Outcome {
  const queryAt = target.indexOf('?');
  const normalized = normalizePath(queryAt < 0 ? target : target.slice(0, queryAt), encodedSlashes);
  const query = queryAt < 0 ? '' : target.slice(queryAt);
  if (!normalized.ok || queryRefusal(query) !== undefined) return { kind: 'refused', status: 400 };
  const req = {
    method: 'GET',
    url: target,
    headers: { host: 'acme.localhost' },
    socket: { encrypted: false, localPort: 80 },
  } as unknown as IncomingMessage;
  const res = { setHeader: () => {} } as unknown as ServerResponse;
  const exchange = new GatewayExchange(req, res, 'r1', '192.0.2.1');
  exchange.tenant = tenant;
  exchange.path = normalized.path;
  exchange.query = query;
  const route = tenant.router.resolve('GET', exchange.path, { facts: exchange, preflight: false });
  if (route === undefined) return { kind: 'unmatched', path: exchange.path };
  if (route instanceof AmbiguousPath) return { kind: 'ambiguous', path: exchange.path };
  exchange.route = route;
  recorded.current = { limitKeys: [] };
  for (const stage of route.stages.request) {
    const result = stage.onRequest?.(exchange);
    if (result !== 'continue') throw new Error(`stage ${stage.name} did not continue: ${String(result)}`);
  }
  return {
    kind: 'forwarded',
    path: exchange.path,
    route,
    forwarded: originPath(exchange).path,
    cacheKey: recorded.current.cacheKey,
    limitKeys: recorded.current.limitKeys,
  };
}

// ---- how origins read a forwarded path ----

/**
 * Percent-decodes once, byte by byte (an invalid escape stays as it is), as latin1; `%2F` stays
 * encoded for an origin that does not decode it (the only kind GATEWAY_ENCODED_SLASHES=keep is for).
 */
function decodeOnce(path: string, keepEncodedSlashes = false): string {
  return path.replace(/%([0-9A-Fa-f]{2})/g, (written, hex: string) =>
    keepEncodedSlashes && hex.toUpperCase() === '2F'
      ? written
      : String.fromCharCode(Number.parseInt(hex, 16)),
  );
}

/** RFC 3986 §5.2.4 remove_dot_segments. */
function removeDotSegments(path: string): string {
  const output: string[] = [];
  const segments = path.split('/');
  for (let i = 1; i < segments.length; i++) {
    const segment = segments[i]!;
    const last = i === segments.length - 1;
    if (segment === '.' || segment === '..') {
      if (segment === '..' && output.length > 0) output.pop();
      if (last) output.push('');
    } else output.push(segment);
  }
  return `/${output.join('/')}`;
}

/** Origin readings of a forwarded path: node's WHATWG URL, and decode-once-then-resolve. */
function originReadingsOf(forwarded: string): { whatwg: string; decodedThenResolved: string } {
  return {
    whatwg: new URL(forwarded, ORIGIN_BASE).pathname,
    decodedThenResolved: removeDotSegments(decodeOnce(forwarded)),
  };
}

/** The path as text: decoded once, its bytes read as UTF-8 (U+FFFD for what is not). */
function originText(path: string, keepEncodedSlashes = false): string {
  return Buffer.from(decodeOnce(path, keepEncodedSlashes), 'latin1').toString('utf8');
}

/**
 * Letters in any case, as ASP.NET's OrdinalIgnoreCase and IIS compare them: each character upper-cased
 * on its own (one that upper-cases to several, `ß`, stays). The origin's model, written apart from the
 * gateway's own folding (shared/src/routing/fold-letters.ts) so that it can catch it out.
 */
function ignoringCase(text: string): string {
  let folded = '';
  for (const character of text) {
    const upper = character.toUpperCase();
    folded += upper.length === character.length ? upper : character;
  }
  return folded;
}

/**
 * A lenient origin (Tomcat, Spring, ASP.NET, IIS): `;` parameters dropped, duplicate slashes merged,
 * decoded once as UTF-8, dot segments resolved, letters in any case.
 */
function lenientReading(forwarded: string, encodedSlashes: EncodedSlashPolicy): string {
  const withoutParameters = forwarded
    .split('/')
    .map((segment) => segment.split(';')[0])
    .join('/')
    .replace(/\/{2,}/g, '/');
  return ignoringCase(removeDotSegments(originText(withoutParameters, encodedSlashes === 'keep')));
}

const under = (path: string, prefix: string) =>
  prefix === '/' || path === prefix || path.startsWith(`${prefix}/`);

// ---- the request targets ----

const BASES = [
  '/pub',
  '/pub/admin',
  '/admin',
  '/strip',
  '/legacy',
  '/users',
  '/files',
  '/filesx',
  '/caf%C3%A9',
  '/CAF%C3%89',
  '/%C3%A9t%C3%A9',
  '/%C3%89t%C3%A9',
];
const WORDS = ['a', 'b', 'x1', 'admin', 'Admin', 'ADMIN', 'pub', 'strip', 'v2', 'users', '7'];
/** Characters as node hands them over: latin1, one per byte (HTTP/2 may hand over others). */
const HOSTILE_SEGMENTS = [
  '.',
  '..',
  '%2e',
  '%2E',
  '.%2e',
  '%2e.',
  '%2e%2e',
  '%2E%2e',
  '%252e%252e',
  '%25252e%25252e',
  '%c0%ae',
  '%C0%AE%C0%AE',
  '\u00c0\u00ae\u00c0\u00ae',
  '%e0%80%ae%e0%80%ae',
  '%c0%af',
  '%e0%80%af',
  '%u002e%u002e',
  '%2f',
  '%2F',
  '..%2f..%2fadmin',
  '..%2F',
  '%5c',
  '..%5cadmin',
  '\\',
  '..\\admin',
  ';',
  'a;b=c',
  '..;',
  '.;x',
  '%2e%2e;',
  '..%3b',
  '..%3B',
  'admin;x=1',
  '%3b',
  '%3f',
  '%3Fadmin',
  '%23',
  '%23admin',
  '#',
  '%00',
  '\u0000',
  'admin.',
  'admin..',
  '...',
  'admin%20',
  'admin ',
  'admin%09',
  '%20',
  '\uff0e\uff0e',
  '\uff0f',
  '\u2024\u2024',
  '%EF%BC%8E%EF%BC%8E',
  '%ef%bc%8f',
  '%E2%80%A4%E2%80%A4',
  '\u00e9',
  '\u00ef\u00bc\u008e',
  '%C3%A9t%C3%A9',
  '%C3%89T%C3%89',
  '%c3%89t%c3%a9',
  '%C3%89%54%C3%89',
  '%41DMIN',
  '%61dmin',
  '%2561dmin',
  '%7e',
  '~',
  '%',
  '%g1',
  '%4',
  '*',
  ':id',
  '@',
  'a'.repeat(300),
  '%2e'.repeat(120),
];
const JOINS = [
  '/',
  '/',
  '/',
  '/',
  '/',
  '/',
  '//',
  '/./',
  '/../',
  '/;x/',
  '\\',
  '/%2e%2e/',
  '/%2f/',
  '/.%2e/',
];
const TAILS = ['', '', '', '', '/', '/.', '/..', ';', '%2F', '.', '%20', '?', '?a=1', '?a=%2e%2e/x', '#x'];

const segment = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...WORDS) },
  { weight: 2, arbitrary: fc.constantFrom(...HOSTILE_SEGMENTS) },
);
const requestTarget = fc
  .tuple(
    fc.constantFrom(...BASES),
    fc.array(fc.tuple(fc.constantFrom(...JOINS), segment), { maxLength: 5 }),
    fc.constantFrom(...TAILS),
  )
  .map(([base, rest, tail]) => base + rest.map(([join, word]) => join + word).join('') + tail);

/**
 * The target split into `%XX` escapes and single characters (the query, after `?`, as one token): the
 * units a respelling may change without changing what it names.
 */
function tokens(target: string): string[] {
  const queryAt = target.indexOf('?');
  const path = queryAt < 0 ? target : target.slice(0, queryAt);
  const out: string[] = [...(path.match(/%[0-9A-Fa-f]{2}|[\s\S]/g) ?? [])];
  if (queryAt >= 0) out.push(target.slice(queryAt));
  return out;
}

const UNRESERVED = /^[A-Za-z0-9._~-]$/;
const hex = (code: number, upper: boolean) => {
  const digits = code.toString(16).padStart(2, '0');
  return `%${upper ? digits.toUpperCase() : digits}`;
};

/**
 * A respelling of the target's path that RFC 3986 says names the same resource: an unreserved character
 * escaped, an escape's hex in the other case, `/` as `//`, `/./` or `/x/../`. Each choice number picks
 * a token and what to do with it.
 */
function respelled(target: string, choices: readonly number[]): string {
  const parts = tokens(target);
  for (const choice of choices) {
    const at = choice % parts.length;
    const token = parts[at]!;
    const how = Math.floor(choice / parts.length) % 4;
    if (token === '/' && at > 0) {
      parts[at] = ['//', '/./', '/zz/../', '/'][how]!;
    } else if (token.length === 1 && UNRESERVED.test(token)) {
      parts[at] = hex(token.charCodeAt(0), how % 2 === 0);
    } else if (token.length === 3 && token.startsWith('%')) {
      parts[at] = how % 2 === 0 ? token.toUpperCase() : token.toLowerCase();
    }
  }
  return parts.join('');
}

// ---- the properties ----

function checkForwarded(
  specs: ReadonlyMap<string, RouteSpec>,
  tenant: CompiledTenant,
  recorded: { current: Recorded },
  outcome: Extract<Outcome, { kind: 'forwarded' }>,
  encodedSlashes: EncodedSlashPolicy,
): void {
  const spec = specs.get(outcome.route.config.id)!;
  const { forwarded } = outcome;
  const readings = originReadingsOf(forwarded);
  // (a) node's URL parser reads the path the gateway forwarded, unchanged.
  expect(readings.whatwg).toBe(forwarded);
  // (a) decoding once adds no dot segment (nor, when %2F is refused, a separator) to resolve.
  if (encodedSlashes === 'reject') expect(readings.decodedThenResolved).toBe(decodeOnce(forwarded));
  else {
    const segments = forwarded.split('/').map((segment) => decodeOnce(segment, true));
    expect(segments.filter((segment) => segment === '.' || segment === '..')).toEqual([]);
  }
  // (a) under the prefix the route forwards to, as the origin reads it strictly or — a route chosen for
  // another reading of the path — leniently (letters in any case, `;` parameters dropped).
  const prefix = spec.forwardsUnder(outcome.path);
  const strictText = originText(forwarded);
  const prefixText = originText(prefix);
  const lenient = lenientReading(forwarded, encodedSlashes);
  const isUnder = spec.stringPrefix
    ? strictText.startsWith(prefixText) || lenient.startsWith(ignoringCase(prefixText))
    : under(strictText, prefixText) || under(lenient, ignoringCase(prefixText));
  expect(isUnder, `${forwarded} under ${prefix}`).toBe(true);
  // (a) a route forwarding the path as it is would be chosen for the origin's own reading too.
  if (spec.forwardsAsIs) {
    const again = serve(tenant, recorded, forwarded, encodedSlashes);
    expect(again.kind === 'forwarded' && again.route.config.id).toBe(outcome.route.config.id);
  }
  // (a) a lenient origin's reading under a key-protected prefix is handled by a key-protected route
  // (for routes that forward the path as it is: a rewrite maps it into the origin's own paths).
  if (spec.forwardsAsIs && KEYED_PREFIXES.some((keyed) => under(lenient, ignoringCase(originText(keyed)))))
    expect(spec.keyed, lenient).toBe(true);
  // (c) idempotent.
  expect(normalizePath(outcome.path, encodedSlashes)).toEqual({ ok: true, path: outcome.path });
}

describe('what the gateway matches, keys and forwards for hostile request paths', () => {
  for (const encodedSlashes of ['reject', 'keep'] as const) {
    it(`agrees with what origins read (encoded slashes: ${encodedSlashes})`, () => {
      const originId = randomUUID();
      const list = routeSpecs(originId);
      const specs = new Map(list.map((spec) => [spec.route.id, spec]));
      const recorded: { current: Recorded } = { current: { limitKeys: [] } };
      const tenant = compiledTenant(list, originId, recorded);
      /** Forwarded path of every cache key seen: one key never stands for two forwarded paths. */
      const forwardedOfKey = new Map<string, string>();
      let forwardedCases = 0;
      fc.assert(
        fc.property(
          requestTarget,
          fc.array(fc.nat({ max: 10_000 }), { minLength: 1, maxLength: 6 }),
          (target, choices) => {
            const outcome = serve(tenant, recorded, target, encodedSlashes);
            const other = serve(tenant, recorded, respelled(target, choices), encodedSlashes);
            // (b) and refusals: a respelling is served exactly as the target is.
            expect(other.kind).toBe(outcome.kind);
            if (outcome.kind !== 'forwarded' || other.kind !== 'forwarded') return;
            forwardedCases++;
            checkForwarded(specs, tenant, recorded, outcome, encodedSlashes);
            expect(other.route.config.id).toBe(outcome.route.config.id);
            expect(other.forwarded).toBe(outcome.forwarded);
            expect(other.cacheKey).toBe(outcome.cacheKey);
            expect(other.limitKeys).toEqual(outcome.limitKeys);
            if (outcome.cacheKey !== undefined) {
              const seen = forwardedOfKey.get(outcome.cacheKey);
              if (seen !== undefined) expect(seen).toBe(outcome.forwarded);
              forwardedOfKey.set(outcome.cacheKey, outcome.forwarded);
            }
          },
        ),
        { seed: SEED, numRuns: CASES },
      );
      // The generator reaches the origin often enough for the properties to say something.
      expect(forwardedCases).toBeGreaterThan(CASES / 10);
      expect(forwardedOfKey.size).toBeGreaterThan(CASES / 20);
    });
  }
});
