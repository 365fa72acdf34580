import { REDACTED_VALUE } from '@vantageedge/shared/domain/credential-headers';
import type { TenantAccess } from '../auth/caller.js';

/**
 * A route's match conditions (`match.headers`, `match.query`: `x-internal-secret` exact `<value>`) and
 * its traffic split's overrides (`x-canary: <value>` → an origin) unlock a route or an origin for
 * whoever sends the value, so their values are for those who may change the route: callers with write
 * access see them, callers with read access only (members, viewers, other org roles) see each
 * condition and override with its value REDACTED_VALUE, as Kong's and Tyk's read-only roles see
 * secrets. Names, `present` conditions and hosts stay visible: they say what a route matches on, not
 * how to get in. Presentation only: commands, plans and the gateways work on the real values.
 */

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** The condition with its `exact` or `prefix` value hidden (`present` gives none away). */
function redactedCondition(condition: unknown): unknown {
  if (!isRecord(condition)) return condition;
  const copy = { ...condition };
  for (const member of ['exact', 'prefix']) {
    if (typeof copy[member] === 'string') copy[member] = REDACTED_VALUE;
  }
  return copy;
}

function redactedConditions(conditions: unknown): unknown {
  return Array.isArray(conditions) ? conditions.map(redactedCondition) : conditions;
}

function redactedOverrides(overrides: unknown): unknown {
  if (!Array.isArray(overrides)) return overrides;
  return overrides.map((override) =>
    isRecord(override) && typeof override['value'] === 'string'
      ? { ...override, value: REDACTED_VALUE }
      : override,
  );
}

function redactedMatch(match: unknown): unknown {
  if (!isRecord(match)) return match;
  return {
    ...match,
    headers: redactedConditions(match['headers']),
    query: redactedConditions(match['query']),
  };
}

function redactedSplit(split: unknown): unknown {
  if (!isRecord(split)) return split;
  return { ...split, overrides: redactedOverrides(split['overrides']) };
}

/** What a member of a record holds, seen by a reader: `match` and `traffic_split` redacted, the rest walked. */
const BY_FIELD: Readonly<Record<string, (value: unknown) => unknown>> = {
  match: redactedMatch,
  'match.headers': redactedConditions,
  'match.query': redactedConditions,
  traffic_split: redactedSplit,
  'traffic_split.overrides': redactedOverrides,
};

/**
 * `value` with every route's match condition and split override values redacted, wherever it lies
 * (a route, a list, a config, a plan, an explanation). `field`: the dotted path `value` is at, for the
 * `from`/`to` of a diff's field change (`match.headers`, `traffic_split.overrides`, …).
 */
export function withoutMatchValues<T>(value: T, field?: string): T {
  return redactDeep(value, field) as T;
}

function redactDeep(value: unknown, field?: string): unknown {
  const byField = field === undefined ? undefined : BY_FIELD[field];
  if (byField !== undefined) return byField(value);
  if (Array.isArray(value)) return value.map((item) => redactDeep(item));
  if (!isRecord(value)) return value;
  const copy: Record<string, unknown> = {};
  for (const [member, item] of Object.entries(value)) {
    const diffField = member === 'fields' && Array.isArray(item) ? redactedFieldChanges(item) : undefined;
    copy[member] =
      diffField ?? redactDeep(item, member === 'match' || member === 'traffic_split' ? member : undefined);
  }
  return copy;
}

/** A diff's or a plan's field changes: each `from`/`to` seen at its field's path. */
function redactedFieldChanges(changes: readonly unknown[]): unknown[] {
  return changes.map((change) => {
    if (!isRecord(change) || typeof change['field'] !== 'string') return redactDeep(change);
    const { field } = change;
    return { ...change, from: redactDeep(change['from'], field), to: redactDeep(change['to'], field) };
  });
}

/** What a caller with `access` to the route's tenant is shown of `value`. */
export function asSeenWith<T>(access: TenantAccess, value: T): T {
  return access === 'write' ? value : withoutMatchValues(value);
}
