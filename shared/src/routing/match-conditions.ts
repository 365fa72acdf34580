import type { IncomingMessage } from 'node:http';
import type { MatchCondition, RouteMatch } from '../domain/route-policies.js';
import { sentHeader, singleHeader } from '../http/header-values.js';
import { hostHeaderName } from './host-lookup.js';

/** What a route's conditions look at: the request's headers (Host included) and its raw query. */
export interface MatchFacts {
  readonly req: IncomingMessage;
  /** The raw query string with its leading "?", or ''. */
  readonly query: string;
}

/**
 * A route's `match` conditions (hosts, headers, query) compiled once per snapshot; all must hold.
 * `count` ranks routes of equal priority and path specificity: more conditions match first.
 */
export interface CompiledConditions {
  readonly count: number;
  /** `preflight`: a CORS preflight carries none of the actual request's headers, so those are skipped. */
  test(facts: MatchFacts, preflight: boolean): boolean;
}

type FieldTest = (value: string | undefined) => boolean;

function fieldTest(condition: MatchCondition): FieldTest {
  if (condition.exact !== undefined) {
    const expected = condition.exact;
    return (value) => value === expected;
  }
  if (condition.prefix !== undefined) {
    const prefix = condition.prefix;
    return (value) => value?.startsWith(prefix) === true;
  }
  return condition.present === false ? (value) => value === undefined : (value) => value !== undefined;
}

/**
 * The host a request is for (HTTP/1.1's Host, HTTP/2's :authority) as a host name: lower-case, no
 * port, no trailing dot; '' when there is none or it is malformed (hostHeaderName).
 */
export function requestHost(req: IncomingMessage): string {
  // HTTP/2 clients send :authority instead of Host (node's compatibility API does not copy it).
  return hostName(singleHeader(req.headers.host) ?? singleHeader(req.headers[':authority']));
}

function hostName(hostHeader: string | undefined): string {
  return hostHeader === undefined ? '' : (hostHeaderName(hostHeader) ?? '');
}

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const value = sentHeader(req.headers, name);
  return value === undefined ? undefined : Array.isArray(value) ? value.join(', ') : value;
}

/**
 * The query's parameters by name (as URLSearchParams reads them). One request is matched against many
 * routes and path readings, one after another: the last query read is kept, so a long query is read
 * once per request, not once per route with query conditions (1,000 such routes and a 16 KB query
 * held the event loop for seconds).
 */
let lastQuery: string | undefined;
let lastParams: ReadonlyMap<string, readonly string[]> = new Map();

function queryParams(query: string): ReadonlyMap<string, readonly string[]> {
  if (query === lastQuery) return lastParams;
  const params = new Map<string, string[]>();
  for (const [name, value] of new URLSearchParams(query)) {
    const values = params.get(name);
    if (values === undefined) params.set(name, [value]);
    else values.push(value);
  }
  lastQuery = query;
  lastParams = params;
  return params;
}

/** null when the route has no conditions (the common case costs one null check per candidate). */
export function compileConditions(match: RouteMatch | null | undefined): CompiledConditions | null {
  if (match === null || match === undefined) return null;
  const hosts = match.hosts.length === 0 ? null : new Set(match.hosts.map((host) => host.toLowerCase()));
  const headers = match.headers.map((condition) => ({
    name: condition.name.toLowerCase(),
    test: fieldTest(condition),
  }));
  const query = match.query.map((condition) => ({ name: condition.name, test: fieldTest(condition) }));
  const count = (hosts === null ? 0 : 1) + headers.length + query.length;
  if (count === 0) return null;
  return {
    count,
    test(facts, preflight) {
      if (hosts !== null && !hosts.has(requestHost(facts.req))) return false;
      if (!preflight) {
        for (const header of headers) if (!header.test(headerValue(facts.req, header.name))) return false;
      }
      if (query.length > 0) {
        const params = queryParams(facts.query);
        for (const condition of query) {
          const values = params.get(condition.name);
          if (values === undefined) {
            if (!condition.test(undefined)) return false;
          } else if (!values.some((value) => condition.test(value))) {
            return false;
          }
        }
      }
      return true;
    },
  };
}
