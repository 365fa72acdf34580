import type { RouteConfig } from '../domain/gateway-config.js';
import { runToEnd, type SlicedWork } from '../process/event-loop-slices.js';
import {
  type CandidateLists,
  type ConditionValueIndex,
  fileByConditionValue,
} from './condition-value-index.js';
import { foldLetters } from './fold-letters.js';
import {
  type CompiledConditions,
  ConditionSet,
  type ExactRequirements,
  exactRequirements,
  type MatchFacts,
  type QueryReading,
  repeatedQueryParameters,
  semicolonSplitParameter,
} from './match-conditions.js';
import { normalizePath } from './normalize-path.js';
import { originReadings } from './path-readings.js';
import { RankOrderCursor } from './rank-order-cursor.js';
import { methodListBreadth } from './route-match-key.js';
import {
  type ComparableProtection,
  covers,
  ProtectionKeys,
  type TenantIpRules,
  uniformProtection,
} from './route-protection.js';

/**
 * Compiles a tenant's routes once per snapshot into a matcher that, per request, only compares
 * strings (no regular expressions). Patterns:
 *   /api/users        exact
 *   /api/users/:id    `:name` matches one non-empty segment
 *   /api/*            the prefix `/api` itself and anything below it
 *   /api*             string prefix (also matches `/apix`)
 * Order: priority (higher first), then specificity — compared segment by segment, a literal beats a
 * `:param`, which beats a wildcard; an exact pattern beats a wildcard that ends where it ends — then
 * the number of `match` conditions (hosts, scheme, headers, query: more first), then the number of methods
 * (fewer first; an empty list, which accepts any method, last), then the snapshot's order (which the
 * projection gives by what routes match, never by their ids). Method lists are upper-case. A route
 * with conditions matches only a request that meets them all.
 *
 * `resolve` is what the request path uses: the route chosen for the path must protect at least as
 * much as every route another common origin reading of the path would match (see path-readings.ts,
 * and letter case); otherwise the strictest of them handles the request, or — when no single one is
 * the strictest, or that one rewrites its path — the request is ambiguous and refused. Likewise a query
 * parameter the conditions read, sent more than once with values that differ, or in a pair only a `;`
 * separates: read as an origin taking only its first or only its last value (splitting pairs at `;` or
 * not), the request must reach a route protected exactly as its own.
 */

type PatternSegment =
  | { kind: 'literal'; value: string }
  | { kind: 'param'; name: string }
  | { kind: 'prefix'; value: string } // last segment "abc*"
  | { kind: 'wildcard' }; // last segment "*"

/**
 * A segment as the matcher keeps it: a literal is its text, a `:param` and a trailing `*` are one shared
 * object each. Every replica holds every tenant's patterns, up to 1,000 of 255 segments: an object per
 * segment (≈ 48 B, in each of two indexes) made such a tenant ≈ 32 MB of heap for 0.5 MB of patterns.
 */
type Segment = string | typeof PARAM | typeof WILDCARD | PrefixSegment;
interface PrefixSegment {
  readonly kind: 'prefix';
  readonly value: string;
}
const PARAM = { kind: 'param' } as const;
const WILDCARD = { kind: 'wildcard' } as const;

const kindOf = (segment: Segment): PatternSegment['kind'] =>
  typeof segment === 'string' ? 'literal' : segment.kind;

export interface MatchableRoute {
  readonly config: RouteConfig;
}

interface CompiledPattern<Route> {
  readonly route: Route;
  readonly segments: readonly Segment[];
  readonly methods: ReadonlySet<string> | null;
  /** Hosts, headers and query the request must have (null: none). */
  readonly conditions: ConditionsOnce | null;
  readonly priority: number;
  /** How many methods the route takes (see methodListBreadth). */
  readonly methodBreadth: number;
  /** Position in the snapshot (the last tie-break). */
  readonly order: number;
  /** Position in match order, set once sorted. */
  rank: number;
  /** How the pattern is compared with a path, set before an index files it (segmentTests). */
  test?: SegmentTest;
  /** A pattern whose letters folding changed: the pattern as written. */
  readonly unfolded?: CompiledPattern<Route>;
}

export class InvalidRoutePatternError extends Error {
  constructor(
    readonly routeId: string,
    readonly pattern: string,
    reason: string,
  ) {
    super(`route ${routeId}: invalid path_pattern ${JSON.stringify(pattern)}: ${reason}`);
    this.name = 'InvalidRoutePatternError';
  }
}

export function compilePattern(routeId: string, pattern: string): PatternSegment[] {
  const parts = normalizedParts(routeId, pattern);
  return segmentsOf(routeId, pattern, parts).map((segment, index): PatternSegment => {
    if (typeof segment === 'string') return { kind: 'literal', value: segment };
    if (segment.kind === 'param') return { kind: 'param', name: parts[index]!.slice(1) };
    return segment.kind === 'wildcard' ? { kind: 'wildcard' } : { kind: 'prefix', value: segment.value };
  });
}

function normalizedParts(routeId: string, pattern: string): string[] {
  const normalized = normalizePath(pattern, 'keep');
  if (!normalized.ok) throw new InvalidRoutePatternError(routeId, pattern, normalized.reason);
  const parts = normalized.path.slice(1).split('/');
  return parts.length === 1 && parts[0] === '' ? [] : parts;
}

/** `pattern`'s segments as the matcher keeps them (literals as their text: see Segment). */
function segmentsOf(routeId: string, pattern: string, parts = normalizedParts(routeId, pattern)): Segment[] {
  return parts.map((part, index): Segment => {
    const last = index === parts.length - 1;
    if (part === '*') {
      if (!last) throw new InvalidRoutePatternError(routeId, pattern, '* is only allowed at the end');
      return WILDCARD;
    }
    if (part.endsWith('*')) {
      if (!last) throw new InvalidRoutePatternError(routeId, pattern, '* is only allowed at the end');
      return { kind: 'prefix', value: part.slice(0, -1) };
    }
    if (part.includes('*'))
      throw new InvalidRoutePatternError(routeId, pattern, '* is only allowed at the end');
    if (part.startsWith(':')) {
      if (part.length === 1) throw new InvalidRoutePatternError(routeId, pattern, 'parameter without a name');
      return PARAM;
    }
    return part;
  });
}

const RANK = { literal: 3, param: 2, prefix: 1, wildcard: 0 } as const;

/** Negative when `a` is more specific than `b`. */
function compareSpecificity(a: readonly Segment[], b: readonly Segment[]): number {
  const shared = Math.min(a.length, b.length);
  for (let i = 0; i < shared; i++) {
    const difference = RANK[kindOf(b[i]!)] - RANK[kindOf(a[i]!)];
    if (difference !== 0) return difference;
  }
  if (a.length === b.length) return 0;
  // One pattern continues: a trailing wildcard is less specific than ending here; more segments are more.
  const longer = a.length > b.length ? a : b;
  const next = longer[shared]!;
  const longerFirst = next === WILDCARD ? 1 : -1;
  return a.length > b.length ? longerFirst : -longerFirst;
}

function segmentsMatch(pattern: readonly Segment[], path: readonly string[]): boolean {
  // path[0] is the empty string before the leading slash.
  const count = path.length - 1;
  for (let i = 0; i < pattern.length; i++) {
    const expected = pattern[i]!;
    if (expected === WILDCARD) return true;
    if (i >= count) return false;
    const actual = path[i + 1]!;
    if (typeof expected === 'string') {
      if (actual !== expected) return false;
    } else if (expected.kind === 'prefix') return actual.startsWith(expected.value);
    else if (actual === '') return false; // a `:param` takes any non-empty segment
  }
  if (pattern.length === 0) return count === 1 && path[1] === ''; // pattern "/" matches only "/"
  return pattern.length === count;
}

/** A path split at "/" (from normalizePath), with what every pattern's test asks of it. */
interface SplitPath {
  /** segments[0] is the empty string before the leading slash. */
  readonly segments: readonly string[];
  /** The first index from 1 whose segment is empty (only a trailing slash's, in a normalised path). */
  readonly firstEmpty: number;
}

function splitPath(path: string): SplitPath {
  const segments = path.split('/');
  let firstEmpty = 1;
  while (firstEmpty < segments.length && segments[firstEmpty] !== '') firstEmpty++;
  return { segments, firstEmpty };
}

/**
 * segmentsMatch for one pattern, cheapest checks first: the path's segment count, then only the literal
 * segments, the rarest among the index's patterns first (a `:param` takes any non-empty segment, and a
 * normalised path has no empty one but a trailing slash's). Comparing every segment in order made a
 * tenant's deep patterns (1,000 routes 168 segments deep, within the pattern length limit) cost
 * routes × depth comparisons per path reading.
 */
class SegmentTest {
  /** Path segments (after the leading one) the pattern needs: exactly, or at least with a `*` or `abc*` tail. */
  readonly #count: number;
  readonly #exactCount: boolean;
  /** Path indexes the pattern's literals and `:param`s cover (from 1). */
  readonly #covered: number;
  /**
   * The path indexes of the literal segments, rarest first; each is compared with the pattern's own
   * segment there (every replica holds every route's: two bytes a literal, not a slot for the index and
   * one for the value).
   */
  readonly #literals: Uint16Array | Uint32Array;
  readonly #prefix: readonly [number, string] | undefined;

  constructor(
    readonly segments: readonly Segment[],
    rarity: (at: number, value: string) => number,
  ) {
    const last = segments[segments.length - 1];
    const prefix =
      last !== undefined && typeof last !== 'string' && last.kind === 'prefix' ? last : undefined;
    this.#covered = last === WILDCARD || prefix !== undefined ? segments.length - 1 : segments.length;
    this.#exactCount = last !== WILDCARD && prefix === undefined;
    this.#count = last === WILDCARD ? segments.length - 1 : segments.length;
    this.#prefix = prefix === undefined ? undefined : [segments.length, prefix.value];
    // Rarest first, then the later segment: each literal's rarity looked up once and sorted as one
    // number (rarity, then position from the end), with no comparison function and no pair per literal.
    const radix = segments.length + 1;
    let literalCount = 0;
    for (let i = 0; i < this.#covered; i++) if (typeof segments[i] === 'string') literalCount++;
    const order = new Float64Array(literalCount);
    for (let i = 0, k = 0; i < this.#covered; i++) {
      const segment = segments[i]!;
      if (typeof segment === 'string') order[k++] = rarity(i + 1, segment) * radix + (radix - 1 - (i + 1));
    }
    order.sort();
    const literals = radix <= 0xffff ? new Uint16Array(literalCount) : new Uint32Array(literalCount);
    for (let k = 0; k < literalCount; k++) literals[k] = radix - 1 - (order[k]! % radix);
    this.#literals = literals;
  }

  /** Whether the pattern matches; `step` counts each segment compared. */
  matches(path: SplitPath, step: () => void): boolean {
    const { segments } = path;
    const count = segments.length - 1;
    step();
    if (this.segments.length === 0 || path.firstEmpty <= this.#covered) {
      // The root pattern, or an empty segment where a `:param` may stand: compared in full.
      return segmentsMatch(this.segments, segments);
    }
    if (this.#exactCount ? count !== this.#count : count < this.#count) return false;
    const literals = this.#literals;
    const own = this.segments;
    for (let i = 0; i < literals.length; i++) {
      step();
      const at = literals[i]!;
      if (segments[at] !== own[at - 1]) return false;
    }
    return this.#prefix === undefined || segments[this.#prefix[0]]!.startsWith(this.#prefix[1]);
  }
}

/**
 * How many of `patterns` have each literal segment at each position: tests check the rarest first.
 * One map per path index, so counting and looking up a segment builds no key (patterns of hundreds of
 * segments, each a key built and hashed per lookup, would cost every replica 0.3–0.6 s per 1,000 patterns).
 */
function* literalRarity(
  patterns: readonly { readonly segments: readonly Segment[] }[],
  step: () => void,
): SlicedWork<(at: number, value: string) => number> {
  const counts: Map<string, number>[] = [];
  for (const { segments } of patterns) {
    for (let i = 0; i < segments.length; i++) {
      const segment = segments[i]!;
      if (typeof segment !== 'string') continue;
      step();
      while (counts.length <= i + 1) counts.push(new Map());
      const at = counts[i + 1]!;
      at.set(segment, (at.get(segment) ?? 0) + 1);
    }
    yield;
  }
  return (at: number, value: string) => {
    step();
    return counts[at]?.get(value) ?? 0;
  };
}

/** Gives each pattern its SegmentTest (against the rarity of literals among `patterns`), a step each. */
function* segmentTests(patterns: readonly CompiledPattern<unknown>[], step: () => void): SlicedWork<void> {
  const rarity = yield* literalRarity(patterns, step);
  for (const pattern of patterns) {
    pattern.test = new SegmentTest(pattern.segments, rarity);
    yield;
  }
}

/**
 * What a request brings besides method and path: needed only by routes with `match` conditions;
 * `preflight` skips their header conditions (a CORS preflight, matched by the method it announces,
 * carries none of the actual request's headers).
 */
export interface MatchRequest {
  readonly facts: MatchFacts | undefined;
  readonly preflight: boolean;
}

const NO_REQUEST: MatchRequest = { facts: undefined, preflight: false };

/**
 * A route's conditions, tested at most once per request: `resolve` tries the route again for every
 * reading of the path and, for HEAD, as GET, and its conditions depend on neither (1,000 routes with
 * conditions made ≈ 24,000 tests per request). `serial` tells requests apart without allocating.
 */
class ConditionsOnce {
  #serial = 0;
  #outcome = false;

  constructor(readonly compiled: CompiledConditions) {}

  /** `serial`: the request's number, unique among this matcher's requests (never 0). */
  test(request: MatchRequest, serial: number): boolean {
    if (request.facts === undefined) return false;
    if (this.#serial !== serial) {
      this.#outcome = this.compiled.test(request.facts, request.preflight, serial);
      this.#serial = serial;
    }
    return this.#outcome;
  }
}

/**
 * Whether a route's method list takes `method`. TRACE (and TRACK, its IIS twin) ask the origin to echo
 * the request it got, with what the gateway added to it (a route's origin credential, the caller's
 * identity): a route for every method does not take them, a route must name them.
 */
function methodAdmitted(methods: ReadonlySet<string> | null, method: string): boolean {
  return methods === null ? method !== 'TRACE' && method !== 'TRACK' : methods.has(method);
}

/**
 * One matcher's method lists as the sets its patterns test: routes with the same list share one set (a
 * tenant's routes mostly take the same few lists, and each Set is ≈ 230 B on every replica).
 */
class MethodSets {
  readonly #byList = new Map<string, ReadonlySet<string>>();

  /** null: the route takes any method. */
  of(methods: readonly string[]): ReadonlySet<string> | null {
    if (methods.length === 0) return null;
    const upper = methods.map((method) => method.toUpperCase());
    const key = JSON.stringify(upper);
    let set = this.#byList.get(key);
    if (set === undefined) {
      set = new Set(upper);
      this.#byList.set(key, set);
    }
    return set;
  }
}

/** Method, then conditions (a route with conditions needs the request's facts). */
function admits(
  candidate: CompiledPattern<unknown>,
  method: string,
  request: MatchRequest,
  serial: number,
): boolean {
  if (!methodAdmitted(candidate.methods, method)) return false;
  return candidate.conditions === null || candidate.conditions.test(request, serial);
}

const conditionCount = (pattern: CompiledPattern<unknown>) => pattern.conditions?.compiled.count ?? 0;

/** The path also reads as the path of routes whose protections cannot be ordered: refused. */
export class AmbiguousPath<Route> {
  constructor(readonly routes: readonly Route[]) {}
}

/**
 * A query parameter the routes' conditions read, sent more than once with values that differ: read as
 * an origin taking only its first or only its last value, the request reaches a route protected
 * otherwise than the one it matches (`routes`: that one first). Refused like an ambiguous path.
 */
export class AmbiguousQuery<Route> extends AmbiguousPath<Route> {
  constructor(
    routes: readonly Route[],
    /** The parameter (as the conditions name it: its parameterKey). */
    readonly parameter: string,
  ) {
    super(routes);
  }
}

/** What the gateways answer an AmbiguousQuery with (403 `ambiguous_query`). */
export function ambiguousQueryMessage(parameter: string): string {
  return `the query parameter ${JSON.stringify(parameter)} is sent more than once with different values, or in a pair after a ';' that some origins do not split, and an origin reading only its first or its last value, or none, would reach a differently protected route; send it once, in a pair of its own`;
}

/** How origins read a repeated parameter; those splitting pairs at `;` too, when that changes what they read. */
const QUERY_READINGS: readonly QueryReading[] = [
  { takes: 'first', semicolons: false },
  { takes: 'last', semicolons: false },
];
const QUERY_READINGS_WITH_SEMICOLONS: readonly QueryReading[] = [
  ...QUERY_READINGS,
  { takes: 'first', semicolons: true },
  { takes: 'last', semicolons: true },
];

/**
 * `readings` and, for a condition's name read in two ways (`user.role`) that a query sends with values
 * that differ, each of them by an origin reading only one way: PHP `user_role`'s values, ASP.NET Core
 * `user[role]`'s. The first and the last of both together are neither's when one is sent between
 * values of the other.
 */
function eachWayToo(readings: readonly QueryReading[]): readonly QueryReading[] {
  return [
    ...readings,
    ...([0, 1] as const).flatMap((reads) => readings.map((reading) => ({ ...reading, reads }))),
  ];
}
const QUERY_READINGS_EACH_WAY = eachWayToo(QUERY_READINGS);
const QUERY_READINGS_WITH_SEMICOLONS_EACH_WAY = eachWayToo(QUERY_READINGS_WITH_SEMICOLONS);

/**
 * What an index holds where most tenants have nothing (every replica holds every tenant's matcher:
 * an empty Map is ≈ 200 B of heap).
 */
const NONE: ReadonlyMap<never, never> = new Map<never, never>();

/**
 * Patterns (already sorted, ranks set) filed by their literal first segment, or in the generic list.
 * A request walks its segment's list and the generic list merged by match order, so no per-segment
 * copy of the generic list is ever built (that copy made the compile O(n²) for tenants with many
 * first segments, blocking every replica's event loop). A list whose routes are told apart by the value
 * they require of one request field is also filed by that value (see condition-value-index.ts).
 */
class PatternIndex<Route> {
  /** Candidates whose first segment is that literal, in match order. */
  readonly #byFirstSegment = new Map<string, CompiledPattern<Route>[]>();
  /** Routes whose first segment is not a literal (and the root route), in match order. */
  readonly #generic: CompiledPattern<Route>[] = [];
  /** Each pattern's patterns with the same key (see patternKey), in match order: given keys only. */
  readonly #samePattern: ReadonlyMap<CompiledPattern<Route>, CompiledPattern<Route>[]>;
  /** The lists above that are filed by condition value (most tenants' routes: none). */
  readonly #filed: ReadonlyMap<
    readonly CompiledPattern<Route>[],
    ConditionValueIndex<CompiledPattern<Route>>
  >;
  readonly #cursor = new RankOrderCursor<CompiledPattern<Route>>();
  /** Path segments compared with patterns so far (see matchSteps). */
  steps = 0;
  readonly #step = () => {
    this.steps++;
  };

  /**
   * Files every pattern (and groups them by `keys`, if given), counting one step per pattern through
   * `step`; each list is then filed by condition value (by what `requirementsOf` says each pattern
   * requires) unless `requirementsOf` is undefined. Every pattern has its test already (segmentTests).
   */
  constructor(
    sorted: readonly CompiledPattern<Route>[],
    step: () => void,
    requirementsOf: ((pattern: CompiledPattern<Route>) => ExactRequirements) | undefined,
    keys?: ReadonlyMap<CompiledPattern<Route>, string>,
  ) {
    const groups = new Map<string, CompiledPattern<Route>[]>();
    const samePattern = new Map<CompiledPattern<Route>, CompiledPattern<Route>[]>();
    for (const pattern of sorted) {
      step();
      const key = keys?.get(pattern);
      if (key !== undefined) {
        const group = groups.get(key) ?? [];
        if (group.length === 0) groups.set(key, group);
        group.push(pattern);
        samePattern.set(pattern, group);
      }
      const first = pattern.segments[0];
      if (typeof first !== 'string') {
        this.#generic.push(pattern);
        continue;
      }
      const bucket = this.#byFirstSegment.get(first);
      if (bucket === undefined) this.#byFirstSegment.set(first, [pattern]);
      else bucket.push(pattern);
    }
    this.#samePattern = samePattern.size > 0 ? samePattern : NONE;
    const filed = new Map<readonly CompiledPattern<Route>[], ConditionValueIndex<CompiledPattern<Route>>>();
    if (requirementsOf !== undefined) {
      for (const list of [this.#generic, ...this.#byFirstSegment.values(), ...groups.values()]) {
        const index = fileByConditionValue(list, requirementsOf);
        if (index !== undefined) filed.set(list, index);
      }
    }
    this.#filed = filed.size > 0 ? filed : NONE;
  }

  /** `list`'s candidates for `request`: filed by condition value, or the whole list. */
  #narrowed(
    list: readonly CompiledPattern<Route>[],
    request: MatchRequest,
    serial: number,
  ): CandidateLists<CompiledPattern<Route>> | undefined {
    return this.#filed.size === 0 ? undefined : this.#filed.get(list)?.candidatesFor(request, serial);
  }

  /** The first pattern matching `path`, in match order. */
  first(
    method: string,
    path: SplitPath,
    request: MatchRequest,
    serial: number,
  ): CompiledPattern<Route> | undefined {
    const generic = this.#generic;
    const literal = this.#byFirstSegment.get(path.segments[1] ?? '');
    if (
      this.#filed.size > 0 &&
      (this.#filed.has(generic) || (literal !== undefined && this.#filed.has(literal)))
    )
      return this.#firstNarrowed(literal, method, path, request, serial);
    if (literal === undefined) return this.#firstMatch(generic, method, path, request, serial);
    if (generic.length === 0) return this.#firstMatch(literal, method, path, request, serial);
    // Both lists are in match order: walk them merged by rank.
    let i = 0;
    let j = 0;
    while (i < literal.length || j < generic.length) {
      const a = literal[i];
      const b = generic[j];
      let candidate: CompiledPattern<Route>;
      if (b === undefined || (a !== undefined && a.rank < b.rank)) {
        candidate = a!;
        i++;
      } else {
        candidate = b;
        j++;
      }
      if (candidate.test!.matches(path, this.#step) && admits(candidate, method, request, serial))
        return candidate;
    }
    return undefined;
  }

  /** The first pattern matching `path` when its lists are filed by condition value. */
  #firstNarrowed(
    literal: readonly CompiledPattern<Route>[] | undefined,
    method: string,
    path: SplitPath,
    request: MatchRequest,
    serial: number,
  ): CompiledPattern<Route> | undefined {
    const cursor = this.#candidates(literal, request, serial);
    for (let candidate = cursor.next(); candidate !== undefined; candidate = cursor.next()) {
      if (candidate.test!.matches(path, this.#step) && admits(candidate, method, request, serial))
        return candidate;
    }
    return undefined;
  }

  /** First matching candidate of one list, in match order. */
  #firstMatch(
    candidates: readonly CompiledPattern<Route>[],
    method: string,
    path: SplitPath,
    request: MatchRequest,
    serial: number,
  ): CompiledPattern<Route> | undefined {
    for (const candidate of candidates) {
      if (candidate.test!.matches(path, this.#step) && admits(candidate, method, request, serial))
        return candidate;
    }
    return undefined;
  }

  /**
   * One walk of a folded index for one reading of a path: for each of `methods`, the first pattern that
   * matches the reading as written (through each pattern's unfolded twin: a pattern matches a path only
   * if, letters folded, it matches the folded path) and, when `folded` is true, every route whose
   * pattern is the first folded match's at the same priority (after case folding `/a/B/*` and
   * `/a/b/*` are one pattern: an origin may serve either). One walk in match order finds them all.
   */
  readingMatches(
    methods: readonly string[],
    written: SplitPath,
    lower: SplitPath,
    folded: boolean,
    request: MatchRequest,
    serial: number,
  ): ReadingMatches<Route>[] {
    const found = methods.map((): ReadingMatches<Route> => ({ exact: undefined, tied: [] }));
    const foldedFirst: Array<CompiledPattern<Route> | undefined> = methods.map(() => undefined);
    let open = methods.length * (folded ? 2 : 1);
    const cursor = this.#candidates(this.#byFirstSegment.get(lower.segments[1] ?? ''), request, serial);
    for (let candidate = cursor.next(); candidate !== undefined && open > 0; candidate = cursor.next()) {
      if (!candidate.test!.matches(lower, this.#step)) continue;
      for (let m = 0; m < methods.length; m++) {
        if (!admits(candidate, methods[m]!, request, serial)) continue;
        if (folded && foldedFirst[m] === undefined) {
          foldedFirst[m] = candidate;
          open--;
        }
        // A pattern matches a path as written only if, letters folded, it matches the folded path.
        const asWritten = candidate.unfolded ?? candidate;
        const sameTest = asWritten === candidate && written === lower;
        if (found[m]!.exact === undefined && (sameTest || asWritten.test!.matches(written, this.#step))) {
          found[m]!.exact = asWritten;
          open--;
        }
      }
    }
    if (folded) {
      for (let m = 0; m < methods.length; m++) {
        const first = foldedFirst[m];
        if (first === undefined) continue;
        const group = this.#samePattern.get(first)!;
        const narrowed = this.#narrowed(group, request, serial);
        cursor.start(
          narrowed?.unfiled ?? group,
          narrowed?.filed ?? NO_CANDIDATES,
          NO_CANDIDATES,
          NO_CANDIDATES,
        );
        for (let candidate = cursor.next(); candidate !== undefined; candidate = cursor.next())
          if (admits(candidate, methods[m]!, request, serial)) found[m]!.tied.push(candidate.route);
      }
    }
    return found;
  }

  /**
   * The patterns that may match a path and `request`, in match order: those filed under the path's
   * first segment (`literal`) and the generic ones, each list narrowed by condition value if filed.
   */
  #candidates(
    literal: readonly CompiledPattern<Route>[] | undefined,
    request: MatchRequest,
    serial: number,
  ): RankOrderCursor<CompiledPattern<Route>> {
    const generic = this.#narrowed(this.#generic, request, serial);
    const literalNarrowed = literal === undefined ? undefined : this.#narrowed(literal, request, serial);
    this.#cursor.start(
      literalNarrowed?.unfiled ?? literal ?? NO_CANDIDATES,
      literalNarrowed?.filed ?? NO_CANDIDATES,
      generic?.unfiled ?? this.#generic,
      generic?.filed ?? NO_CANDIDATES,
    );
    return this.#cursor;
  }
}

const NO_CANDIDATES: readonly never[] = [];
const NOTHING_REQUIRED: ExactRequirements = new Map();

/** What one reading of a path finds for one method (see PatternIndex.readingMatches). */
interface ReadingMatches<Route> {
  /** The first pattern matching the reading as written. */
  exact: CompiledPattern<Route> | undefined;
  /** The routes of the first pattern matching it with letters folded, and of the same pattern. */
  readonly tied: Route[];
}

/**
 * The segment with its letters folded; `texts` holds the folded texts made so far, so that equal ones
 * are one string (`/A/B/…` folded is as many new strings as segments otherwise, 24 B each on every
 * replica).
 */
function foldCase(segment: Segment, texts: Map<string, string>): Segment {
  const text = typeof segment === 'string' ? segment : segment.kind === 'prefix' ? segment.value : undefined;
  if (text === undefined) return segment;
  const folded = foldLetters(text);
  if (folded === text) return segment;
  const shared = texts.get(folded) ?? folded;
  texts.set(shared, shared);
  return typeof segment === 'string' ? shared : { kind: 'prefix', value: shared };
}

/** Whether folding its letters (foldLetters) changes the pattern. */
function foldingChanges(segments: readonly Segment[]): boolean {
  return segments.some((segment) => {
    const text =
      typeof segment === 'string' ? segment : segment.kind === 'prefix' ? segment.value : undefined;
    return text !== undefined && text !== foldLetters(text);
  });
}

/**
 * Priority and segments as one string: equal keys are the same pattern. A literal has no `*` and does
 * not start with `:` (compilePattern reads those as other kinds), so `:` and a trailing `*` tell the
 * kinds apart, and the key is about the pattern's length (a label per segment made it five times that).
 */
function patternKey(pattern: CompiledPattern<unknown>): string {
  const parts = pattern.segments.map((segment) =>
    typeof segment === 'string'
      ? segment
      : segment.kind === 'param'
        ? ':'
        : segment.kind === 'wildcard'
          ? '*'
          : `${segment.value}*`,
  );
  return `${pattern.priority}/${parts.join('/')}`;
}

/** One route as the matcher sees a request (see RouteMatcher.evaluate). */
export interface RouteEvaluation<Route> {
  readonly route: Route;
  /** Position in match order (0 is tried first). */
  readonly rank: number;
  /** The route accepts the method (its list is empty or names it). */
  readonly methodMatches: boolean;
  /** The route's pattern matches the path as written. */
  readonly pathMatches: boolean;
}

/** A route's pattern as compiled (and with letters folded, once asked for). */
interface PatternOfRoute {
  readonly pattern: string;
  readonly segments: readonly Segment[];
  folded?: readonly Segment[];
}

/**
 * Each route's compiled pattern, by its config object: a tenant's next version hands its unchanged
 * routes over as the same objects, so a version that changes one route of 1,000 does not parse and
 * fold the other 999 patterns again.
 */
const compiledPatterns = new WeakMap<RouteConfig, PatternOfRoute>();

function patternOf(config: RouteConfig): PatternOfRoute {
  let compiled = compiledPatterns.get(config);
  if (compiled?.pattern !== config.path_pattern) {
    compiled = { pattern: config.path_pattern, segments: segmentsOf(config.id, config.path_pattern) };
    compiledPatterns.set(config, compiled);
  }
  return compiled;
}

/** The route's segments with letters folded (see foldCase): the same array when folding changes none. */
function foldedPatternOf(config: RouteConfig, texts: Map<string, string>): readonly Segment[] {
  const compiled = patternOf(config);
  compiled.folded ??= foldingChanges(compiled.segments)
    ? compiled.segments.map((segment) => foldCase(segment, texts))
    : compiled.segments;
  return compiled.folded;
}

/** What a RouteMatcher is made of (see matcherParts). */
interface MatcherParts<Route> {
  readonly exact: PatternIndex<Route>;
  readonly folded: PatternIndex<Route> | undefined;
  readonly foldablePatterns: boolean;
  readonly ordered: readonly CompiledPattern<Route>[];
  readonly compileSteps: number;
  readonly protection: Map<Route, ComparableProtection>;
  readonly conditions: ConditionSet | undefined;
}

export interface RouteMatcherOptions {
  /**
   * false: every request visits every candidate of its path (the reference the condition value index
   * is tested against).
   */
  readonly indexConditionValues?: boolean;
}

/** The parts RouteMatcher.compiling made, handed to the constructor (never set outside this module). */
const PREBUILT: unique symbol = Symbol('prebuilt');

/**
 * Compiles the routes, a step (a yield) per route in each pass: patterns of hundreds of segments
 * take a replica 0.1–0.3 ms each to compile, so a tenant's 1,000 of them are not one block of every
 * replica's event loop (GatewayConfigStore.applyInSlices runs this in slices).
 */
function* matcherParts<Route extends MatchableRoute>(
  routes: readonly Route[],
  tenantIpRules: TenantIpRules,
  indexConditionValues: boolean,
): SlicedWork<MatcherParts<Route>> {
  let steps = 0;
  const step = () => {
    steps++;
  };
  const conditions = new ConditionSet();
  const methodSets = new MethodSets();
  const compiled: CompiledPattern<Route>[] = [];
  // What each route's conditions require, for filing the indexes only: kept on the patterns, it was
  // ≈ 5 KB a route with 20 `exact` conditions on every replica for as long as the tenant's version.
  const required = new Map<Route, ExactRequirements>();
  for (const route of routes) {
    const requirements = exactRequirements(route.config.match);
    if (requirements.size > 0) required.set(route, requirements);
    compiled.push({
      route,
      segments: patternOf(route.config).segments,
      methods: methodSets.of(route.config.methods),
      conditions: conditionsOnce(conditions.compile(route.config.match)),
      priority: route.config.priority,
      methodBreadth: methodListBreadth(route.config.methods),
      order: compiled.length,
      rank: 0,
    });
    yield;
  }
  conditions.orderRarestFirst();
  compiled.sort((a, b) => {
    steps++;
    return (
      b.priority - a.priority ||
      compareSpecificity(a.segments, b.segments) ||
      conditionCount(b) - conditionCount(a) ||
      a.methodBreadth - b.methodBreadth ||
      a.order - b.order
    );
  });
  yield;
  for (let rank = 0; rank < compiled.length; rank++) compiled[rank]!.rank = rank;
  yield* segmentTests(compiled, step);
  const requirementsOf = indexConditionValues
    ? (pattern: CompiledPattern<Route>) => required.get(pattern.route) ?? NOTHING_REQUIRED
    : undefined;
  const exact = new PatternIndex(compiled, step, requirementsOf);
  yield;
  const foldablePatterns = compiled.some((pattern) => foldingChanges(pattern.segments));
  const keys = new ProtectionKeys(tenantIpRules);
  const protection = new Map<Route, ComparableProtection>();
  for (const route of routes) {
    protection.set(route, keys.of(route.config));
    yield;
  }
  let folded: PatternIndex<Route> | undefined;
  if (!uniformProtection([...protection.values()])) {
    const foldedPatterns: CompiledPattern<Route>[] = [];
    const foldedKeys = new Map<CompiledPattern<Route>, string>();
    const foldedTexts = new Map<string, string>();
    for (const pattern of compiled) {
      const foldedPattern: CompiledPattern<Route> = {
        ...pattern,
        segments: foldedPatternOf(pattern.route.config, foldedTexts),
        ...(foldingChanges(pattern.segments) ? { unfolded: pattern } : {}),
      };
      foldedPatterns.push(foldedPattern);
      foldedKeys.set(foldedPattern, patternKey(foldedPattern));
      yield;
    }
    yield* segmentTests(foldedPatterns, step);
    folded = new PatternIndex(foldedPatterns, step, requirementsOf, foldedKeys);
    yield;
  }
  // Emptied, not only left behind: optimised code may keep this function's closures' context.
  required.clear();
  return {
    exact,
    folded,
    foldablePatterns,
    ordered: compiled,
    compileSteps: steps,
    protection,
    conditions: conditions.size > 0 ? conditions : undefined,
  };
}

/** Compiled in O(n log n) for n routes: one sort, then one pass filing each route (two with readings). */
export class RouteMatcher<Route extends MatchableRoute> {
  readonly #exact: PatternIndex<Route>;
  /** The same patterns with letters folded to lower case; absent when no reading can change protection. */
  readonly #folded: PatternIndex<Route> | undefined;
  /** Some pattern changes when its letters are folded (see foldLetters). */
  readonly #foldablePatterns: boolean;
  /** Every pattern in match order. */
  readonly #ordered: readonly CompiledPattern<Route>[];
  /** Elementary compile steps (comparisons and placements): how compile work grows with the routes. */
  readonly compileSteps: number;
  /** Each route's protection, as requests whose readings reach several routes compare them. */
  readonly #protection: Map<Route, ComparableProtection>;
  /** Requests matched so far: the last one's number (see ConditionsOnce). */
  #requests = 0;
  /** The routes' distinct match conditions (undefined: no route has any). */
  readonly #conditions: ConditionSet | undefined;

  /** The matcher of `routes`, compiled as sliced work: a step per route in each pass. */
  static *compiling<Route extends MatchableRoute>(
    routes: readonly Route[],
    tenantIpRules: TenantIpRules = null,
    { indexConditionValues = true }: RouteMatcherOptions = {},
  ): SlicedWork<RouteMatcher<Route>> {
    const parts = yield* matcherParts(routes, tenantIpRules, indexConditionValues);
    return new RouteMatcher(routes, tenantIpRules, { [PREBUILT]: parts });
  }

  constructor(
    routes: readonly Route[],
    tenantIpRules: TenantIpRules = null,
    options: RouteMatcherOptions & { readonly [PREBUILT]?: MatcherParts<Route> } = {},
  ) {
    const parts =
      options[PREBUILT] ??
      runToEnd(matcherParts(routes, tenantIpRules, options.indexConditionValues ?? true));
    this.#exact = parts.exact;
    this.#folded = parts.folded;
    this.#foldablePatterns = parts.foldablePatterns;
    this.#ordered = parts.ordered;
    this.compileSteps = parts.compileSteps;
    this.#protection = parts.protection;
    this.#conditions = parts.conditions;
  }

  /** Path segments compared with patterns so far: how matching work grows with the routes. */
  get matchSteps(): number {
    return this.#exact.steps + (this.#folded?.steps ?? 0);
  }

  /** Match conditions tested so far (each distinct one at most once per request). */
  get conditionTests(): number {
    return this.#conditions?.tests ?? 0;
  }

  /** The route for `path` as written (`path` must come from normalizePath). */
  match(method: string, path: string, request: MatchRequest = NO_REQUEST): Route | undefined {
    return this.#match(method, path, request, ++this.#requests);
  }

  #match(method: string, path: string, request: MatchRequest, serial: number): Route | undefined {
    return this.#exact.first(method, splitPath(path), request, serial)?.route;
  }

  /**
   * Every route in match order with what its method list and its pattern say about `method` and
   * `path` (from normalizePath): the same comparisons `match` makes, for explaining a decision. Not
   * for the request path (it visits every route).
   */
  evaluate(method: string, path: string): RouteEvaluation<Route>[] {
    const segments = path.split('/');
    return this.#ordered.map((candidate) => ({
      route: candidate.route,
      rank: candidate.rank,
      methodMatches: methodAdmitted(candidate.methods, method),
      pathMatches: segmentsMatch(candidate.segments, segments),
    }));
  }

  /**
   * The route that handles a request: the route for `path`, unless a route matched by another
   * reading of the path (letter case, trailing slash, `;` parameters), or of a HEAD request as GET,
   * protects more. Then the
   * strictest matched route handles it; when none is at least as strict as all the others, the path
   * is ambiguous. A path no route matches as written stays unmatched. A request whose query, read as
   * an origin taking only the first or only the last value of a repeated parameter, reaches a route
   * protected otherwise, is ambiguous too (AmbiguousQuery).
   */
  resolve(
    method: string,
    path: string,
    request: MatchRequest = NO_REQUEST,
  ): Route | AmbiguousPath<Route> | undefined {
    const serial = ++this.#requests;
    const resolved = this.#resolve(method, path, request, serial);
    if (resolved === undefined || resolved instanceof AmbiguousPath) return resolved;
    const parameter = this.#repeatedParameter(request.facts, serial);
    if (parameter === undefined) return resolved;
    const reached = new Set([resolved]);
    let ambiguous = false;
    const { req, query, peerTrusted } = request.facts!;
    const conditions = this.#conditions!;
    const semicolons = semicolonSplitParameter(query, conditions.queryNames) !== undefined;
    const { twoWayNames } = conditions;
    const eachWay =
      twoWayNames.length > 0 &&
      (repeatedQueryParameters(query, twoWayNames).length > 0 ||
        (semicolons && semicolonSplitParameter(query, twoWayNames) !== undefined));
    const readings = eachWay
      ? semicolons
        ? QUERY_READINGS_WITH_SEMICOLONS_EACH_WAY
        : QUERY_READINGS_EACH_WAY
      : semicolons
        ? QUERY_READINGS_WITH_SEMICOLONS
        : QUERY_READINGS;
    for (const queryReading of readings) {
      const facts: MatchFacts = { req, query, peerTrusted, queryReading };
      const read = this.#resolve(method, path, { facts, preflight: request.preflight }, ++this.#requests);
      if (read === undefined) continue;
      const routes = read instanceof AmbiguousPath ? read.routes : [read];
      for (const route of routes) {
        if (read instanceof AmbiguousPath || !this.#equallyProtected(route, resolved)) {
          ambiguous = true;
          reached.add(route);
        }
      }
    }
    return ambiguous ? new AmbiguousQuery([...reached], parameter) : resolved;
  }

  /**
   * The first parameter the query conditions read that the request sends more than once with values
   * that differ, or that origins splitting pairs at `;` and those splitting at `&` alone read apart
   * (semicolonSplitParameter), when a query condition decided something for it (`serial`) and the
   * routes' protections differ: otherwise no reading of the query can reach a differently protected route.
   */
  #repeatedParameter(facts: MatchFacts | undefined, serial: number): string | undefined {
    const conditions = this.#conditions;
    if (
      this.#folded === undefined ||
      conditions === undefined ||
      facts === undefined ||
      facts.query === '' ||
      !conditions.queryTested(serial)
    )
      return undefined;
    return (
      repeatedQueryParameters(facts.query, conditions.queryNames)[0] ??
      semicolonSplitParameter(facts.query, conditions.queryNames)
    );
  }

  #equallyProtected(a: Route, b: Route): boolean {
    const protectionOfA = this.#protection.get(a)!;
    const protectionOfB = this.#protection.get(b)!;
    return covers(protectionOfA, protectionOfB) && covers(protectionOfB, protectionOfA);
  }

  #resolve(
    method: string,
    path: string,
    request: MatchRequest,
    serial: number,
  ): Route | AmbiguousPath<Route> | undefined {
    const folded = this.#folded;
    if (folded === undefined) return this.#match(method, path, request, serial);
    const methods = originMethodReadings(method);
    const readMatches = (reading: string) => {
      const lower = foldLetters(reading);
      // When folding changes neither the reading nor any pattern, it finds what the exact match found.
      const foldedToo = lower !== reading || this.#foldablePatterns;
      const written = splitPath(reading);
      const lowerPath = foldedToo ? splitPath(lower) : written;
      return folded.readingMatches(methods, written, lowerPath, foldedToo, request, serial);
    };
    const asWritten = readMatches(path);
    // methods[0] is the request's own method.
    const chosen = asWritten[0]!.exact?.route;
    if (chosen === undefined) return undefined;
    // Each method's finds in the order they are compared (the first strictest of them wins a tie).
    const byMethod: Route[][] = methods.map(() => []);
    const writtenMatches = new Map([[path, asWritten]]);
    const readings = originReadings(path);
    for (let i = -1; i < readings.length; i++) {
      const reading = i < 0 ? path : readings[i]!;
      const found = i < 0 ? asWritten : readMatches(reading);
      writtenMatches.set(reading, found);
      found.forEach((matches, m) => {
        if ((i >= 0 || m > 0) && matches.exact !== undefined) byMethod[m]!.push(matches.exact.route);
        byMethod[m]!.push(...matches.tied);
      });
    }
    // A Set: up to every route of the tenant, each found once per reading.
    const candidates = new Set([chosen, ...byMethod.flat()]);
    if (candidates.size === 1) return chosen;
    const strictest = strictestOf([...candidates], this.#protection);
    if (strictest === undefined) return new AmbiguousPath([...candidates]);
    // A route's rewrite_path and strip_prefix work on the path its pattern matched, segment by segment.
    // A route found only through a reading that changes segments (letter case, `;` parameters) did not
    // match them: rewritten by position, or not at all, the origin would get a path the route's
    // configuration never produces. Its trailing slash toggled, the path has the route's segments.
    if (
      strictest !== chosen &&
      rewritesPath(strictest.config) &&
      ![path, toggledSlash(path)].some((reading) =>
        writtenMatches.get(reading)?.some((matches) => matches.exact?.route === strictest),
      )
    )
      return new AmbiguousPath([...candidates]);
    return strictest;
  }
}

function conditionsOnce(compiled: CompiledConditions | null): ConditionsOnce | null {
  return compiled === null ? null : new ConditionsOnce(compiled);
}

/**
 * The methods an origin may run a request as: its own, and for HEAD also GET (Express, Rails, Django,
 * Spring and most frameworks answer HEAD with the GET handler, which runs and sends its headers).
 */
function originMethodReadings(method: string): readonly string[] {
  return method === 'HEAD' ? HEAD_READINGS : [method];
}

const HEAD_READINGS = ['HEAD', 'GET'] as const;

function toggledSlash(path: string): string {
  return path.endsWith('/') ? path.slice(0, -1) : `${path}/`;
}

function rewritesPath(config: RouteConfig): boolean {
  return (config.rewrite_path ?? null) !== null || (config.strip_prefix ?? null) !== null;
}

/**
 * The candidate that protects at least as much as every other one (the first such), if any, in
 * O(candidates): "protects at least as much" is transitive, so one pass that keeps the candidate
 * protecting as much as those before it (or else takes the next) ends on one protecting as much as
 * all, if any does; the first such is then the first protecting as much as it. Comparing every pair
 * cost a million comparisons (≈ 470 ms with rate limits) per request for 1,000 routes `/*`.
 */
function strictestOf<Route extends MatchableRoute>(
  candidates: readonly Route[],
  protection: ReadonlyMap<Route, ComparableProtection>,
): Route | undefined {
  const routeCovers = (a: Route, b: Route) => covers(protection.get(a)!, protection.get(b)!);
  let strongest = candidates[0]!;
  for (const candidate of candidates) if (!routeCovers(strongest, candidate)) strongest = candidate;
  if (!candidates.every((candidate) => routeCovers(strongest, candidate))) return undefined;
  return candidates.find((candidate) => routeCovers(candidate, strongest));
}
