import {
  type ExactField,
  type ExactRequirements,
  type MatchFacts,
  requestValue,
  SEVERAL_VALUES,
} from './match-conditions.js';

/**
 * Fewest candidates filing must spare a request (at worst) for a list to be filed: below that,
 * visiting them costs less than reading the field.
 */
const FEWEST_FILED = 8;

/** What a candidate list holds: its position in match order. */
export interface IndexedCandidate {
  readonly rank: number;
}

/** What a candidate's route's `match` requires (read only while an index is built). */
export type RequirementsOf<Candidate> = (candidate: Candidate) => ExactRequirements;

/** The candidates a request may match: two lists, each in match order (either may be empty). */
export interface CandidateLists<Candidate> {
  readonly unfiled: readonly Candidate[];
  readonly filed: readonly Candidate[];
}

/** What the request is, for the index: its facts (none: it meets no condition) and whether it is a preflight. */
export interface IndexedRequest {
  readonly facts: MatchFacts | undefined;
  readonly preflight: boolean;
}

const NONE: readonly never[] = [];

/**
 * `sorted` (in match order) filed by condition value, when that spares requests enough candidates;
 * undefined otherwise (most lists: every request gets all of them).
 */
export function fileByConditionValue<Candidate extends IndexedCandidate>(
  sorted: readonly Candidate[],
  requirementsOf: RequirementsOf<Candidate>,
  preflight = false,
): ConditionValueIndex<Candidate> | undefined {
  const field =
    sorted.length >= FEWEST_FILED ? mostSelectiveField(sorted, requirementsOf, preflight) : undefined;
  return field === undefined ? undefined : new ConditionValueIndex(sorted, field, requirementsOf);
}

/**
 * Candidates of one path index list (already in match order) filed, when the snapshot is compiled, by
 * the value they require of one request field (host, header or query parameter; the one that tells
 * them apart best): routes on one path told apart by their own `x-shard: exact <n>` are otherwise
 * visited one by one, each request paying for every route of the tenant.
 *
 * Precedence is kept because nothing is reordered: a request gets the candidates requiring the value
 * it has (one bucket) and those requiring none, each list still in match order (callers merge them by
 * rank), and every candidate left out requires a value the request does not have, so it would have
 * failed its conditions. A preflight skips header conditions: for it a header-filed list is filed
 * again by another field, or not at all.
 */
export class ConditionValueIndex<Candidate extends IndexedCandidate> {
  readonly #field: ExactField;
  readonly #everything: CandidateLists<Candidate>;
  /** The candidates that require no value of the field, alone: for a request without it. */
  readonly #unfiledOnly: CandidateLists<Candidate>;
  readonly #byValue = new Map<string, CandidateLists<Candidate>>();
  /** For a preflight: filed by a field other than a header, if one spares enough (see candidatesFor). */
  readonly #forPreflight: ConditionValueIndex<Candidate> | undefined;
  /** The last request's lists (see candidatesFor). */
  #serial = 0;
  #lists: CandidateLists<Candidate>;

  constructor(sorted: readonly Candidate[], field: ExactField, requirementsOf: RequirementsOf<Candidate>) {
    this.#field = field;
    this.#everything = { unfiled: sorted, filed: NONE };
    this.#lists = this.#everything;
    const unfiled: Candidate[] = [];
    const buckets = new Map<string, Candidate[]>();
    for (const candidate of sorted) {
      const values = requirementsOf(candidate).get(field.key)?.values;
      if (values === undefined) unfiled.push(candidate);
      else
        for (const value of values) {
          const bucket = buckets.get(value);
          if (bucket === undefined) buckets.set(value, [candidate]);
          else bucket.push(candidate);
        }
    }
    this.#unfiledOnly = { unfiled, filed: NONE };
    for (const [value, filed] of buckets) this.#byValue.set(value, { unfiled, filed });
    this.#forPreflight =
      field.kind === 'header' ? fileByConditionValue(sorted, requirementsOf, true) : undefined;
  }

  /** The candidates `request` may match; `serial`: the request's number (see RouteMatcher). */
  candidatesFor(request: IndexedRequest, serial: number): CandidateLists<Candidate> {
    if (request.preflight && this.#field.kind === 'header')
      return this.#forPreflight?.candidatesFor(request, serial) ?? this.#everything;
    if (this.#serial !== serial) {
      this.#lists = this.#listsFor(request.facts);
      this.#serial = serial;
    }
    return this.#lists;
  }

  #listsFor(facts: MatchFacts | undefined): CandidateLists<Candidate> {
    // Without facts a request meets no condition: filed candidates all fail.
    if (facts === undefined) return this.#unfiledOnly;
    const value = requestValue(this.#field, facts);
    if (value === undefined) return this.#unfiledOnly;
    // A repeated query parameter meets a condition through any of its values: no single bucket.
    if (value === SEVERAL_VALUES) return this.#everything;
    return this.#byValue.get(value) ?? this.#unfiledOnly;
  }
}

/**
 * The field whose filing leaves a request the fewest candidates at worst (those requiring no value of
 * it, and the largest bucket), if that spares at least FEWEST_FILED of them: a host every route
 * requires spares none, a header each route requires its own value of spares all but one. Header
 * fields are skipped for a preflight.
 */
function mostSelectiveField<Candidate>(
  candidates: readonly Candidate[],
  requirementsOf: RequirementsOf<Candidate>,
  preflight: boolean,
): ExactField | undefined {
  const fields = new Map<string, { field: ExactField; filed: number; buckets: Map<string, number> }>();
  for (const candidate of candidates) {
    const requirements = requirementsOf(candidate);
    if (requirements.size === 0) continue;
    for (const { field, values } of requirements.values()) {
      if (preflight && field.kind === 'header') continue;
      const entry = fields.get(field.key) ?? { field, filed: 0, buckets: new Map<string, number>() };
      fields.set(field.key, entry);
      entry.filed++;
      for (const value of values) entry.buckets.set(value, (entry.buckets.get(value) ?? 0) + 1);
    }
  }
  let best: ExactField | undefined;
  let fewest = candidates.length - FEWEST_FILED + 1;
  for (const { field, filed, buckets } of fields.values()) {
    let largest = 0;
    for (const size of buckets.values()) largest = Math.max(largest, size);
    const worst = candidates.length - filed + largest;
    if (worst < fewest) {
      best = field;
      fewest = worst;
    }
  }
  return best;
}
