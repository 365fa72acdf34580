import type { IncomingMessage } from 'node:http';
import {
  keptOnlyFromTrustedProxy,
  type MatchCondition,
  type RouteMatch,
  readsClientCopyOfGatewayHeader,
} from '../domain/route-policies.js';
import { asOriginsReadIt, otherSpellingsSent } from '../http/cgi-spellings.js';
import { rawQueryPairs } from '../http/form-decoding.js';
import { sentHeader, singleHeader } from '../http/header-values.js';
import { connectionNamedHeaders, HOP_BY_HOP_HEADERS } from '../http/hop-by-hop-headers.js';
import { dottedParameterKey, namedParameterKeys, parameterKey } from '../http/query-parameter-spellings.js';
import { hostHeaderName } from './host-lookup.js';

/**
 * What a route's conditions look at: the request's headers (Host included) and its raw query. Only
 * the headers of the request are read: explain gives those of the request it describes. A header or
 * query parameter is read in every spelling an origin reads as its name (CGI-style origins read
 * `x_canary` as X-Canary; see query-parameter-spellings.ts for the query's): a route that refuses
 * `?admin=true` also refuses `?Admin=true` and `?admin[]=true`, which the origin would read as it.
 */
export interface MatchFacts {
  readonly req: Pick<IncomingMessage, 'headers'>;
  /** The raw query string with its leading "?", or ''. */
  readonly query: string;
  /**
   * The request came from a trusted proxy, whose True-Client-IP, X-Forwarded-Ssl and the like the
   * gateway passes on (keptOnlyFromTrustedProxy); from any other peer a condition reads them as not
   * sent, as the origin gets the request. Explain leaves it out: a client through no trusted proxy.
   */
  readonly peerTrusted?: boolean | undefined;
  /**
   * Read each query parameter as an origin that takes only its first, or only its last, value (of all
   * its spellings, in the order sent); undefined: every value counts (a condition holds when any meets it).
   */
  readonly queryReading?: QueryReading | undefined;
  /**
   * The scheme the client used as the gateway determined it (clientProto: a trusted proxy's
   * X-Forwarded-Proto, else whether its connection is TLS); undefined: a `match.scheme` is not met.
   */
  readonly scheme?: string | undefined;
}

/**
 * How an origin reads a parameter sent more than once: Go, Flask and nginx's `$arg_` take the first, PHP
 * and Rails the last; and whether it also splits pairs at `;` (Go before 1.17, Python before 3.9.2,
 * Perl's CGI), so that `a=1;b=2` is two pairs to it and one (`a` = `1;b=2`) to the others.
 */
export interface QueryReading {
  readonly takes: 'first' | 'last';
  readonly semicolons: boolean;
  /**
   * Of a name a condition reads in two ways (`user.role`: PHP's `user_role`, and the `user[role]`
   * ASP.NET Core and Spring bind), the one the origin reads: 0 the first, 1 the second; undefined:
   * the values of both, in the order sent.
   */
  readonly reads?: 0 | 1 | undefined;
}

/**
 * A route's `match` conditions (hosts, scheme, headers, query) compiled once per snapshot; all must hold.
 * `count` ranks routes of equal priority and path specificity: more conditions match first.
 */
export interface CompiledConditions {
  readonly count: number;
  /**
   * `preflight`: a CORS preflight carries none of the actual request's headers, so those are skipped.
   * `serial`: the request's number among its matcher's requests (never 0); a condition met or failed
   * under one serial is not tested again. Without it every condition is tested.
   */
  test(facts: MatchFacts, preflight: boolean, serial?: number): boolean;
}

type FieldTest = (value: string | undefined) => boolean;
/** Whether any of a query parameter's values (sorted; undefined when absent) meets the condition. */
type ValuesTest = (sorted: readonly string[] | undefined) => boolean;

function fieldTest(condition: MatchCondition): FieldTest {
  if (condition.exact !== undefined) {
    const expected = condition.exact;
    return (value) => value === expected;
  }
  if (condition.prefix !== undefined) {
    const prefix = condition.prefix;
    return (value) => value !== undefined && hasPrefix(value, prefix);
  }
  return condition.present === false ? (value) => value === undefined : (value) => value !== undefined;
}

/**
 * `value.startsWith(prefix)` as one string comparison: V8 runs startsWith character by character
 * (measured on Node 24: 1.8–2.9 µs for a 400-character prefix, 20–30 times `slice(0, n) ===`), and one
 * request may meet the prefix conditions of every route of its path.
 */
function hasPrefix(value: string, prefix: string): boolean {
  return value.length >= prefix.length && value.slice(0, prefix.length) === prefix;
}

/**
 * Like fieldTest, over every value of a repeated parameter in O(log n): in sorted values, those equal to
 * or starting with a string come first at its lower bound. A client repeats a name thousands of times
 * for free; scanning them all, once per route and path reading, multiplied by the tenant's routes.
 */
function valuesTest(condition: MatchCondition): ValuesTest {
  if (condition.exact !== undefined) {
    const expected = condition.exact;
    return (sorted) => sorted !== undefined && sorted[lowerBound(sorted, expected)] === expected;
  }
  if (condition.prefix !== undefined) {
    const prefix = condition.prefix;
    return (sorted) => {
      const value = sorted?.[lowerBound(sorted, prefix)];
      return value !== undefined && hasPrefix(value, prefix);
    };
  }
  return condition.present === false ? (sorted) => sorted === undefined : (sorted) => sorted !== undefined;
}

/** The first index whose value is not below `value` (sorted.length when none). */
function lowerBound(sorted: readonly string[], value: string): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (sorted[middle]! < value) low = middle + 1;
    else high = middle;
  }
  return low;
}

/**
 * The host a request is for (HTTP/1.1's Host, HTTP/2's :authority) as a host name: lower-case, no
 * port, no trailing dot; '' when there is none or it is malformed (hostHeaderName).
 */
export function requestHost(req: Pick<IncomingMessage, 'headers'>): string {
  // HTTP/2 clients send :authority instead of Host (node's compatibility API does not copy it); a Host
  // beside it is not read (RFC 9113 §8.3.1), as the gateway reads the host it finds the tenant by.
  return hostName(singleHeader(req.headers[':authority']) ?? singleHeader(req.headers.host));
}

function hostName(hostHeader: string | undefined): string {
  return hostHeader === undefined ? '' : (hostHeaderName(hostHeader) ?? '');
}

/**
 * A header condition on a field the gateway passes on only from a trusted proxy: the trusted proxy's line
 * of that very name (the gateway drops any other spelling), else the field as not sent.
 */
function trustedProxyHeaderTest(condition: MatchCondition, name: string): (facts: MatchFacts) => boolean {
  const test = fieldTest(condition);
  const fromOtherPeers = test(undefined);
  return ({ req, peerTrusted }) => (peerTrusted === true ? test(headerValue(req, name)) : fromOtherPeers);
}

/**
 * Per request headers, the values of each field the request sent in several spellings (see
 * valuesInEverySpelling), by the field's name.
 */
const spelledValues = new WeakMap<object, Map<string, readonly string[]>>();

/**
 * The values (sorted) of every spelling of the field `name` (lower case, `-` for `_`) the request sent,
 * when it sent another than `name` (undefined otherwise: nearly every request, answered without
 * allocating). Gathered once per request and field: a field's name with n dashes has 2^n spellings, a
 * client may send them all, and every route condition on the field reads them.
 */
function valuesInEverySpelling(
  req: Pick<IncomingMessage, 'headers'>,
  name: string,
): readonly string[] | undefined {
  const gathered = spelledValues.get(req.headers)?.get(name);
  if (gathered !== undefined) return gathered;
  const sent = otherSpellingsSent(req.headers, name);
  if (sent.length === 0) return undefined;
  const others = sent.filter((spelling) => !connectionNamed(req.headers).has(spelling));
  if (others.length === 0) return undefined;
  const values = others.map((spelling) => headerValue(req, spelling)!);
  const own = headerValue(req, name);
  if (own !== undefined) values.push(own);
  values.sort();
  let byName = spelledValues.get(req.headers);
  if (byName === undefined) {
    byName = new Map();
    spelledValues.set(req.headers, byName);
  }
  byName.set(name, values);
  return values;
}

/**
 * The end-to-end fields the request's Connection header names, per request headers: the gateway drops
 * them for the hop (RFC 9110 §7.6.1), so a condition reads them as the origin gets the request, without
 * them. The hop-by-hop fields themselves (`Connection: upgrade` of a WebSocket) are the gateway's own.
 */
const namedInConnection = new WeakMap<object, ReadonlySet<string>>();
const NONE: ReadonlySet<string> = new Set();
/** What nearly every Connection header says, which names no field: answered without parsing. */
const OPTIONS_ONLY: ReadonlySet<string> = new Set(['keep-alive', 'close', 'Keep-Alive', 'Close']);

function connectionNamed(headers: Pick<IncomingMessage, 'headers'>['headers']): ReadonlySet<string> {
  const connection = sentHeader(headers, 'connection');
  if (connection === undefined || (typeof connection === 'string' && OPTIONS_ONLY.has(connection)))
    return NONE;
  let named = namedInConnection.get(headers);
  if (named === undefined) {
    const listed = connectionNamedHeaders(connection);
    named =
      listed === undefined ? NONE : new Set([...listed].filter((name) => !HOP_BY_HOP_HEADERS.includes(name)));
    namedInConnection.set(headers, named);
  }
  return named;
}

/**
 * A field's lines joined, per lines array: a request is matched against many routes and readings (a
 * route's transform replaces a field's array, never changes it).
 */
const joinedLines = new WeakMap<readonly string[], string>();

function headerValue(req: Pick<IncomingMessage, 'headers'>, name: string): string | undefined {
  // HTTP/2 clients name the host in :authority and send no Host line.
  const value =
    name === 'host'
      ? (singleHeader(req.headers[':authority']) ?? sentHeader(req.headers, name))
      : sentHeader(req.headers, name);
  if (value === undefined || connectionNamed(req.headers).has(name)) return undefined;
  if (!Array.isArray(value)) return value;
  let joined = joinedLines.get(value);
  if (joined === undefined) {
    joined = value.join(', ');
    joinedLines.set(value, joined);
  }
  return joined;
}

/**
 * The query's parameters by parameterKey, each one's values sorted on first use (valuesTest). A name is
 * decoded as origins read it (rawQueryPairs: `??format=pdf` holds `?format`, no `format`; unlike
 * URLSearchParams, which drops that second `?`), and counts under each name an origin reads it as: its
 * parameterKey and, with `[…]` after it, the name before (`admin[]` and `admin[0]` are `admin` to PHP,
 * Rails and Express's qs), and with a `.` in it its dottedParameterKey too (ASP.NET Core and Spring read
 * `filter.status` as `filter[status]`, so as `filter`'s). A `;` within a parameter also separates pairs of their own (Go before 1.17,
 * Python before 3.9.2, Perl's CGI): `x=1;admin=true` has `admin` too. One request is matched against
 * many routes and path readings, one after another: the last query read is kept, so a long query is
 * read once per request, not once per route with query conditions (1,000 such routes and a 16 KB query
 * held the event loop for seconds).
 */
let lastQuery: string | undefined;
let lastParams: QueryParameters | undefined;

interface QueryValues {
  readonly values: string[];
  sorted: boolean;
  /** What an origin splitting pairs at `&` alone reads first and last; undefined: no value to it. */
  ampersands: QueryEnds | undefined;
  /** What an origin splitting pairs at `;` too reads first and last; undefined: no value to it. */
  semicolons: QueryEnds | undefined;
}

/** The value sent first and the one sent last (of every spelling), with their positions in the query. */
interface QueryEnds {
  first: string;
  firstAt: number;
  last: string;
  lastAt: number;
}

/** Which origins read a pair (a bit set): those splitting at `&` alone, those splitting at `;` too. */
const AMPERSANDS = 1;
const SEMICOLONS = 2;
const EVERY_ORIGIN = AMPERSANDS | SEMICOLONS;

function queryParams(query: string): QueryParameters {
  if (query === lastQuery && lastParams !== undefined) return lastParams;
  const params = new Map<string, QueryValues>();
  // A name sent twice, or one a `[…]` may make another's: only then may a name have several values.
  let repeats = false;
  const add = (name: string, value: string, at: number, readers: number): void => {
    const key = parameterKey(name);
    addUnder(key, value, at, readers);
    // ASP.NET Core and Spring read `filter.status` as `filter[status]` (PHP as `filter_status`).
    const dotted = dottedParameterKey(name);
    if (dotted !== undefined && dotted !== key) addUnder(dotted, value, at, readers);
  };
  const addUnder = (key: string, value: string, at: number, readers: number): void => {
    const entry = params.get(key);
    if (entry === undefined) {
      const created: QueryValues = { values: [], sorted: true, ampersands: undefined, semicolons: undefined };
      addValue(created, value, at, readers);
      params.set(key, created);
      if (key.includes('[')) repeats = true;
    } else {
      addValue(entry, value, at, readers);
      repeats = true;
    }
  };
  const raw = query[0] === '?' ? query.slice(1) : query;
  // The pieces (their numbers) holding a `;`: one pair to some origins, the pairs within to others.
  let split: Set<number> | undefined;
  let pair = 0;
  if (raw.includes(';')) {
    split = new Set();
    // The pairs within a piece come right after the piece itself (URLSearchParams skips empty pieces).
    for (const piece of raw.split('&')) {
      if (piece === '') continue;
      if (piece.includes(';')) {
        split.add(pair);
        const pairs = rawQueryPairs(piece.replaceAll(';', '&'));
        for (let index = 0; index < pairs.length; index++) {
          const [name, value] = pairs[index]!;
          add(name, value, pair + (index + 1) / (pairs.length + 1), SEMICOLONS);
        }
      }
      pair++;
    }
    pair = 0;
  }
  for (const [name, value] of rawQueryPairs(raw)) {
    add(name, value, pair, split?.has(pair) === true ? AMPERSANDS : EVERY_ORIGIN);
    pair++;
  }
  lastQuery = query;
  lastParams = new QueryParameters(params, repeats);
  return lastParams;
}

/** Adds a value sent at position `at`, read by `readers` (AMPERSANDS, SEMICOLONS), to `entry`. */
function addValue(entry: QueryValues, value: string, at: number, readers: number): void {
  entry.values.push(value);
  entry.sorted = entry.values.length === 1;
  if ((readers & AMPERSANDS) !== 0) entry.ampersands = withValue(entry.ampersands, value, at);
  if ((readers & SEMICOLONS) !== 0) entry.semicolons = withValue(entry.semicolons, value, at);
}

function withValue(ends: QueryEnds | undefined, value: string, at: number): QueryEnds {
  if (ends === undefined) return { first: value, firstAt: at, last: value, lastAt: at };
  if (at < ends.firstAt) {
    ends.first = value;
    ends.firstAt = at;
  }
  if (at > ends.lastAt) {
    ends.last = value;
    ends.lastAt = at;
  }
  return ends;
}

/** The values of several parts as one parameter's. */
function joinedValues(parts: readonly QueryValues[]): QueryValues {
  const values: string[] = [];
  for (const part of parts) values.push(...part.values);
  return {
    values,
    sorted: false,
    ampersands: joinedEnds(parts.map((part) => part.ampersands)),
    semicolons: joinedEnds(parts.map((part) => part.semicolons)),
  };
}

/** The first and last of several parts' values (undefined: none has any). */
function joinedEnds(parts: ReadonlyArray<QueryEnds | undefined>): QueryEnds | undefined {
  let joined: QueryEnds | undefined;
  for (const part of parts) {
    if (part === undefined) continue;
    if (joined === undefined) joined = { ...part };
    else {
      withValue(joined, part.first, part.firstAt);
      withValue(joined, part.last, part.lastAt);
    }
  }
  return joined;
}

/**
 * A query's parameters by parameterKey, read by the name a condition names: a parameter counts under
 * its own key and under each part of it before a `[` (`admin[]` and `admin[0]` are `admin` to PHP, Rails
 * and Express's qs; `filter[a][b]` is also `filter[a]`). Those parts are looked up per name a condition
 * asks for, in the keys sorted once, never spelled out per parameter: a client's name of many `[` costs
 * what a short one does.
 */
class QueryParameters {
  readonly #byKey: ReadonlyMap<string, QueryValues>;
  #sortedKeys: string[] | undefined;
  readonly #extended = new Map<string, QueryValues | undefined>();

  constructor(
    byKey: ReadonlyMap<string, QueryValues>,
    /** Whether some name may have several values (else every name has at most one). */
    readonly mayRepeat: boolean,
  ) {
    this.#byKey = byKey;
  }

  get(name: string): QueryValues | undefined {
    if (this.#extended.has(name)) return this.#extended.get(name);
    if (name.includes(EITHER)) {
      const parts = name.split(EITHER).flatMap((key) => this.get(key) ?? []);
      const joined = parts.length < 2 ? parts[0] : joinedValues(parts);
      this.#extended.set(name, joined);
      return joined;
    }
    const own = this.#byKey.get(name);
    const extensions = this.#keysExtending(name);
    let entry = own;
    if (extensions.length > 0) {
      const parts = extensions.map((key) => this.#byKey.get(key)!);
      if (own !== undefined) parts.unshift(own);
      entry = joinedValues(parts);
    }
    this.#extended.set(name, entry);
    return entry;
  }

  /** The keys that are `name[…]`: the sorted keys from `name[` up to the first that does not start so. */
  #keysExtending(name: string): string[] {
    if (this.#sortedKeys === undefined) {
      this.#sortedKeys = [];
      for (const key of this.#byKey.keys()) if (key.includes('[')) this.#sortedKeys.push(key);
      this.#sortedKeys.sort();
    }
    const keys = this.#sortedKeys;
    const prefix = `${name}[`;
    let low = 0;
    let high = keys.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (keys[middle]! < prefix) low = middle + 1;
      else high = middle;
    }
    const found: string[] = [];
    for (let index = low; index < keys.length && keys[index]!.startsWith(prefix); index++)
      found.push(keys[index]!);
    return found;
  }
}

/** The values a condition reads: all of them (sorted), or the one an origin reading `reading` takes. */
function valuesRead(
  entry: QueryValues | undefined,
  reading: QueryReading | undefined,
): readonly string[] | undefined {
  if (reading === undefined || entry === undefined) return sortedValues(entry);
  const value = valueRead(entry, reading);
  return value === undefined ? undefined : [value];
}

/** The value an origin reading `reading` takes of `entry`: undefined when it reads none. */
function valueRead(entry: QueryValues, reading: QueryReading): string | undefined {
  const ends = reading.semicolons ? entry.semicolons : entry.ampersands;
  if (ends === undefined) return undefined;
  return reading.takes === 'first' ? ends.first : ends.last;
}

/**
 * The names among `names` (parameterKeys) that `query` sends more than once, in any of their spellings,
 * with values that are not all the same: an origin reading the first value and one reading the last
 * may read such a parameter differently from the route conditions, which take any value.
 */
export function repeatedQueryParameters(query: string, names: Iterable<string>): string[] {
  const params = queryParams(query);
  if (!params.mayRepeat) return [];
  const repeated: string[] = [];
  for (const name of names) {
    const sorted = sortedValues(params.get(name));
    if (sorted !== undefined && sorted.length > 1 && sorted[0] !== sorted[sorted.length - 1])
      repeated.push(shownParameter(name));
  }
  return repeated;
}

/**
 * The first of `names` (parameterKeys) that an origin splitting pairs at `;` may read in `query`
 * otherwise than one splitting at `&` alone: its first or its last value differs, or only one of them
 * reads it (`?x=1;format=pdf` holds no `format` to the latter, even sent once).
 */
export function semicolonSplitParameter(query: string, names: Iterable<string>): string | undefined {
  if (!query.includes(';')) return undefined;
  const params = queryParams(query);
  for (const name of names) {
    const entry = params.get(name);
    if (entry === undefined) continue;
    const { ampersands: a, semicolons: s } = entry;
    if (a === undefined || s === undefined || a.first !== s.first || a.last !== s.last)
      return shownParameter(name);
  }
  return undefined;
}

function sortedValues(entry: QueryValues | undefined): readonly string[] | undefined {
  if (entry === undefined) return undefined;
  if (!entry.sorted) {
    entry.values.sort();
    entry.sorted = true;
  }
  return entry.values;
}

/**
 * One of a route's conditions (its host list, or one header or query condition) as a test of a request;
 * `never`: one no request meets (see headersNeverMet).
 */
type Condition =
  | { readonly kind: 'hosts'; readonly hosts: ReadonlySet<string> }
  | { readonly kind: 'scheme'; readonly scheme: string }
  | { readonly kind: 'header' | 'query'; test(facts: MatchFacts): boolean }
  | HeaderFieldCondition
  | { readonly kind: 'never' };

/**
 * A condition on a header field as the request sends it (ConditionSet.headerField): its value, or the
 * values of every spelling sent when it sent several.
 */
interface HeaderFieldCondition {
  readonly kind: 'header_field';
  /** The field's index in its ConditionSet. */
  readonly field: number;
  readonly test: FieldTest;
  readonly testSpellings: ValuesTest;
}

const NEVER: Condition = { kind: 'never' };

/**
 * The scheme a `match.scheme` compares: a trusted proxy's X-Forwarded-Proto in lower case, with the
 * `ws` / `wss` Traefik writes on a WebSocket upgrade read as the `http` / `https` its handshake came over
 * (as the gateway's own listeners tell an upgrade's scheme).
 */
function requestScheme(scheme: string | undefined): string | undefined {
  const lower = scheme?.toLowerCase();
  return lower === 'wss' ? 'https' : lower === 'ws' ? 'http' : lower;
}

/**
 * The names (as written) of `match`'s header conditions no request meets: on a header the gateway writes
 * for the origin (readsClientCopyOfGatewayHeader), stored before commands refused them. The client's copy
 * would decide them while the origin gets the gateway's value, and leaving one out would widen its route
 * to requests it was meant to turn away; so its route takes no request, a CORS preflight included.
 */
export function headersNeverMet(match: RouteMatch | null | undefined): string[] {
  if (match === null || match === undefined) return [];
  return match.headers.map((condition) => condition.name).filter(readsClientCopyOfGatewayHeader);
}

/**
 * One header or query condition as a string, equal for two conditions exactly when they test a request
 * the same way (header names without case): what a snapshot's matcher tests once per request, and what
 * the control plane's TENANT_MAX_MATCH_CONDITIONS counts.
 */
export function matchConditionKey(kind: 'header' | 'query', condition: MatchCondition): string {
  return conditionKey(kind, conditionFieldName(kind, condition.name), condition);
}

/**
 * The name a condition reads its field by, one for all the spellings it reads: a header's in lower
 * case with `-` for `_`, a query parameter's namedParameterKey (`ids[]` reads `ids`, as origins fill it);
 * for a name with a `.`, its keys joined by EITHER (`user.role` reads `user_role` and `user[role]`).
 */
function conditionFieldName(kind: 'header' | 'query', name: string): string {
  return kind === 'header' ? asOriginsReadIt(name.toLowerCase()) : namedParameterKeys(name).join(EITHER);
}

/**
 * Between the keys of a condition's parameter read in two ways (conditionFieldName): no key holds a NUL,
 * which parameterKey ends a name at.
 */
const EITHER = '\0';

/** The key of a condition's field name that `reading` reads (both, joined, when it reads both). */
function nameRead(fieldName: string, reading: QueryReading | undefined): string {
  if (reading?.reads === undefined) return fieldName;
  const either = fieldName.indexOf(EITHER);
  if (either < 0) return fieldName;
  return reading.reads === 0 ? fieldName.slice(0, either) : fieldName.slice(either + 1);
}

/** The parameter a condition's field name names, as messages show it: its first key. */
function shownParameter(fieldName: string): string {
  const either = fieldName.indexOf(EITHER);
  return either < 0 ? fieldName : fieldName.slice(0, either);
}

function conditionKey(kind: string, name: string, condition: MatchCondition): string {
  const test =
    condition.exact !== undefined
      ? ['exact', condition.exact]
      : condition.prefix !== undefined
        ? ['prefix', condition.prefix]
        : ['present', condition.present !== false];
  return JSON.stringify([kind, name, ...test]);
}

/**
 * The distinct conditions of one snapshot's routes. A condition several routes carry (one host list, or
 * one header or query parameter with one test) is tested once per request: a tenant's routes often
 * share a host, a version header or an API key prefix, and one request may meet every route of its
 * path. A snapshot's matcher owns one set; `serial` tells its requests apart (see RouteMatcher).
 */
export class ConditionSet {
  readonly #ids = new Map<string, number>();
  readonly #conditions: Condition[] = [];
  /** How many routes carry each condition. */
  readonly #routes: number[] = [];
  /** Every route's list of conditions (see orderRarestFirst). */
  readonly #lists: number[][] = [];
  readonly #testedFor: number[] = [];
  readonly #outcomes: boolean[] = [];
  /**
   * The header fields the conditions read (lower case, `-` for `_`), and each one's read of the last
   * request that needed it (#headerOutcome): many routes test one field for many values.
   */
  readonly #headerFields: string[] = [];
  readonly #headerFieldIndex = new Map<string, number>();
  readonly #fieldReadFor: number[] = [];
  readonly #fieldValues: (string | undefined)[] = [];
  readonly #fieldSpellings: (readonly string[] | undefined)[] = [];
  #hostFor = 0;
  #host = '';
  /** The parameterKeys the query conditions read. */
  readonly #queryNames = new Set<string>();
  readonly #twoWayNames: string[] = [];
  /** The last request (serial) for which a query condition was tested. */
  #queryTestedFor = 0;
  /** Conditions tested so far, each distinct one at most once per request. */
  tests = 0;

  /** Distinct conditions compiled so far. */
  get size(): number {
    return this.#conditions.length;
  }

  /** The parameters (parameterKeys) the query conditions read. */
  get queryNames(): ReadonlySet<string> {
    return this.#queryNames;
  }

  /** The parameters the query conditions read in two ways (QueryReading.reads tells them apart). */
  get twoWayNames(): readonly string[] {
    return this.#twoWayNames;
  }

  /** Whether request `serial` has had a query condition tested (only then may its query decide a route). */
  queryTested(serial: number): boolean {
    return this.#queryTestedFor === serial;
  }

  /** null when the route has no conditions (the common case costs one null check per candidate). */
  compile(match: RouteMatch | null | undefined): CompiledConditions | null {
    if (match === null || match === undefined) return null;
    const ids: number[] = [];
    const headerIds: number[] = [];
    if (match.hosts.length > 0) {
      const hosts = new Set(match.hosts.map((host) => host.toLowerCase()));
      ids.push(this.#id(JSON.stringify(['hosts', ...[...hosts].sort()]), { kind: 'hosts', hosts }));
    }
    if (match.scheme !== undefined) {
      ids.push(this.#id(JSON.stringify(['scheme', match.scheme]), { kind: 'scheme', scheme: match.scheme }));
    }
    for (const condition of match.headers) {
      const name = conditionFieldName('header', condition.name);
      if (readsClientCopyOfGatewayHeader(name)) {
        // Not a header condition to a preflight either, which skips those (headersNeverMet).
        ids.push(this.#id('never', NEVER));
        continue;
      }
      const id = this.#id(
        conditionKey('header', name, condition),
        keptOnlyFromTrustedProxy(name)
          ? { kind: 'header', test: trustedProxyHeaderTest(condition, name) }
          : {
              kind: 'header_field',
              field: this.#headerField(name),
              test: fieldTest(condition),
              testSpellings: valuesTest(condition),
            },
      );
      ids.push(id);
      headerIds.push(id);
    }
    for (const condition of match.query) {
      const name = conditionFieldName('query', condition.name);
      const test = valuesTest(condition);
      if (name.includes(EITHER) && !this.#queryNames.has(name)) this.#twoWayNames.push(name);
      this.#queryNames.add(name);
      ids.push(
        this.#id(conditionKey('query', name, condition), {
          kind: 'query',
          test: ({ query, queryReading }) =>
            test(valuesRead(queryParams(query).get(nameRead(name, queryReading)), queryReading)),
        }),
      );
    }
    const count = ids.length;
    if (count === 0) return null;
    for (const id of new Set(ids)) this.#routes[id]!++;
    const withoutHeaders = ids.filter((id) => !headerIds.includes(id));
    this.#lists.push(ids, withoutHeaders);
    return {
      count,
      test: (facts, preflight, serial) => {
        for (const id of preflight ? withoutHeaders : ids)
          if (!this.#outcome(id, facts, serial)) return false;
        return true;
      },
    };
  }

  /**
   * Orders each route's conditions by how few routes share them, once every route is compiled: a
   * request that fails a route usually fails the condition that sets the route apart (its own version,
   * its own host), and one shared by every route is then never tested for those routes.
   */
  orderRarestFirst(): void {
    const routes = this.#routes;
    for (const list of this.#lists) list.sort((a, b) => routes[a]! - routes[b]! || a - b);
  }

  #id(key: string, condition: Condition): number {
    let id = this.#ids.get(key);
    if (id === undefined) {
      id = this.#conditions.length;
      this.#ids.set(key, id);
      this.#conditions.push(condition);
      this.#routes.push(0);
      this.#testedFor.push(0);
      this.#outcomes.push(false);
    }
    return id;
  }

  #outcome(id: number, facts: MatchFacts, serial: number | undefined): boolean {
    if (serial !== undefined && this.#testedFor[id] === serial) return this.#outcomes[id]!;
    this.tests++;
    const condition = this.#conditions[id]!;
    if (condition.kind === 'query' && serial !== undefined) this.#queryTestedFor = serial;
    const outcome =
      condition.kind === 'hosts'
        ? condition.hosts.has(this.#requestHost(facts, serial))
        : condition.kind === 'scheme'
          ? requestScheme(facts.scheme) === condition.scheme
          : condition.kind === 'never'
            ? false
            : condition.kind === 'header_field'
              ? this.#headerOutcome(condition, facts, serial)
              : condition.test(facts);
    if (serial !== undefined) {
      this.#testedFor[id] = serial;
      this.#outcomes[id] = outcome;
    }
    return outcome;
  }

  #headerField(name: string): number {
    let field = this.#headerFieldIndex.get(name);
    if (field === undefined) {
      field = this.#headerFields.push(name) - 1;
      this.#headerFieldIndex.set(name, field);
      this.#fieldReadFor.push(0);
      this.#fieldValues.push(undefined);
      this.#fieldSpellings.push(undefined);
    }
    return field;
  }

  /**
   * Whether a header condition holds for the field in all its spellings sent (a test of presence or of
   * a value holds when any spelling meets it, `present: false` only when none was sent), the field read
   * once per request whatever the conditions on it.
   */
  #headerOutcome(condition: HeaderFieldCondition, facts: MatchFacts, serial: number | undefined): boolean {
    const { field } = condition;
    if (serial === undefined || this.#fieldReadFor[field] !== serial) {
      const name = this.#headerFields[field]!;
      const spelled = valuesInEverySpelling(facts.req, name);
      this.#fieldSpellings[field] = spelled;
      this.#fieldValues[field] = spelled === undefined ? headerValue(facts.req, name) : undefined;
      if (serial !== undefined) this.#fieldReadFor[field] = serial;
    }
    const spelled = this.#fieldSpellings[field];
    return spelled === undefined
      ? condition.test(this.#fieldValues[field])
      : condition.testSpellings(spelled);
  }

  /** The request's host, read once per request (routes' host lists differ more than their hosts). */
  #requestHost(facts: MatchFacts, serial: number | undefined): string {
    if (serial === undefined) return requestHost(facts.req);
    if (this.#hostFor !== serial) {
      this.#host = requestHost(facts.req);
      this.#hostFor = serial;
    }
    return this.#host;
  }
}

/** A route's conditions on their own (a matcher compiles its routes' into one ConditionSet). */
export function compileConditions(match: RouteMatch | null | undefined): CompiledConditions | null {
  return new ConditionSet().compile(match);
}

/**
 * A request field a route's `match` may require one of some values of: the host (its host list), a
 * header or a query parameter (an `exact` condition). `key` is equal for two fields exactly when
 * their conditions read the same field.
 */
export type ExactField =
  | { readonly kind: 'host'; readonly key: string }
  | { readonly kind: 'header' | 'query'; readonly key: string; readonly name: string };

/** What a route requires of request fields, by field key: one of the values of each (see exactRequirements). */
export type ExactRequirements = ReadonlyMap<
  string,
  { readonly field: ExactField; readonly values: ReadonlySet<string> }
>;

const NO_REQUIREMENTS: ExactRequirements = new Map();

/**
 * The fields `match` requires one of some values of, each with those values: a request whose value of
 * the field is none of them fails the route (a host list takes any of its hosts; of two `exact`
 * conditions on one field, a request meets at most one).
 */
export function exactRequirements(match: RouteMatch | null | undefined): ExactRequirements {
  if (match === null || match === undefined) return NO_REQUIREMENTS;
  const requirements = new Map<string, { field: ExactField; values: Set<string> }>();
  const require = (field: ExactField, value: string) => {
    const entry = requirements.get(field.key) ?? { field, values: new Set<string>() };
    requirements.set(field.key, entry);
    entry.values.add(value);
  };
  for (const host of match.hosts) require({ kind: 'host', key: 'host' }, host.toLowerCase());
  for (const condition of match.headers) {
    const name = conditionFieldName('header', condition.name);
    if (condition.exact !== undefined)
      require({ kind: 'header', key: `header:${name}`, name }, condition.exact);
  }
  for (const condition of match.query) {
    const name = conditionFieldName('query', condition.name);
    if (condition.exact !== undefined)
      require({ kind: 'query', key: `query:${name}`, name }, condition.exact);
  }
  return requirements.size === 0 ? NO_REQUIREMENTS : requirements;
}

/**
 * A query parameter sent more than once, or a field sent in several spellings: the request has several
 * values of the field.
 */
export const SEVERAL_VALUES = Symbol('several values');

/**
 * The one value all of `values` are, else SEVERAL_VALUES: a name read in two ways (`api.shard` is
 * `api_shard` and `api[shard]`) holds the value of one pair under each, as does a pair sent twice.
 */
function soleValue(values: readonly string[]): string | typeof SEVERAL_VALUES {
  const value = values[0]!;
  for (let index = 1; index < values.length; index++) if (values[index] !== value) return SEVERAL_VALUES;
  return value;
}

/** The request's value of `field`, read as the route conditions read it (undefined: it has none). */
export function requestValue(
  field: ExactField,
  facts: MatchFacts,
): string | undefined | typeof SEVERAL_VALUES {
  switch (field.kind) {
    case 'host':
      return requestHost(facts.req);
    case 'header': {
      const spelled = valuesInEverySpelling(facts.req, field.name);
      if (spelled === undefined) return headerValue(facts.req, field.name);
      return spelled.length === 1 ? spelled[0] : SEVERAL_VALUES;
    }
    case 'query': {
      const entry = queryParams(facts.query).get(nameRead(field.name, facts.queryReading));
      if (entry === undefined) return undefined;
      if (facts.queryReading !== undefined) return valueRead(entry, facts.queryReading);
      return soleValue(entry.values);
    }
  }
}
