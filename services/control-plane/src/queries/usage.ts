import { uuidId } from '@vantageedge/shared/domain/uuid-id';
import { readOnceMoreIfLost } from '@vantageedge/shared/postgres/lost-connections';
import { readOnlyWithTimeout } from '@vantageedge/shared/postgres/read-only-with-timeout';
import {
  isStorableUserId,
  MAX_USAGE_USER_ID_LENGTH,
  OVERFLOW_ID,
  STATUS_CLASSES,
  type StatusClass,
} from '@vantageedge/shared/usage/usage-cells';
import type pg from 'pg';
import { z } from 'zod';
import { createInFlightCounter, readersShareOf } from '../admin-rate-limit/in-flight-counter.js';
import { rateLimited } from '../domain/errors.js';
import type { RequiredAccess } from './visibility.js';

/**
 * GET /api/v1/usage: requests the gateways served, from `usage_counts` (hourly rows the usage flusher
 * adds; a day is the sum of its UTC hours). The counts trail the traffic by the gateways' flush
 * interval plus the flusher's (a few seconds by default).
 *
 * Overflow: id `*` (OVERFLOW_ID, `overflow: true` in a breakdown) is no route, key or user but the
 * requests a gateway did not break down past its cardinality limits (GATEWAY_USAGE_MAX_USERS_PER_TENANT,
 * GATEWAY_USAGE_MAX_CELLS[_PER_TENANT]); they are in every total. `user_id=*` asks for them.
 */

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
/** The most periods one answer has: 31 days of hours, about a year of days. */
export const MAX_USAGE_POINTS = { hour: 744, day: 400 } as const;

/**
 * The instants a usage range may name. Beyond them PostgreSQL has no timestamp for the range's ends:
 * year 0 does not exist there, and `to` rounded up past 9999 is written with a 6-digit year.
 */
export const USAGE_DATE_RANGE = { earliest: '1970-01-01T00:00:00Z', latest: '9999-01-01T00:00:00Z' } as const;
const datetime = z.iso.datetime({ offset: true, message: 'must be an ISO-8601 date-time' }).refine(
  (value) => {
    const ms = Date.parse(value);
    // Not a date at all: the format's own issue says so.
    if (Number.isNaN(ms)) return true;
    return ms >= Date.parse(USAGE_DATE_RANGE.earliest) && ms <= Date.parse(USAGE_DATE_RANGE.latest);
  },
  { message: `must be from ${USAGE_DATE_RANGE.earliest} to ${USAGE_DATE_RANGE.latest}` },
);
const optionalId = uuidId().optional();
/**
 * `user_id` as /openapi.json states it. A user id as the gateways count it — a Clerk user id,
 * `oidc:<issuer digest>:<sub>` with whatever a tenant's issuer put in `sub` (`auth0|…`, an e-mail,
 * spaces), `svc:<id>` — or OVERFLOW_ID: the users counted together past their limit. Only what no
 * cell can hold is refused (isStorableUserId: also a lone surrogate, which a pattern cannot say).
 */
export const USER_ID_PATTERN = '^[^\\u0000-\\u001f\\u007f]+$';

export const usageQuery = z
  .strictObject({
    tenant_id: optionalId,
    api_key_id: optionalId,
    route_id: optionalId,
    user_id: z
      .string()
      .min(1)
      .max(MAX_USAGE_USER_ID_LENGTH)
      .refine(
        isStorableUserId,
        'must be a user id as the usage breakdown shows it (no control characters), or * (the overflow)',
      )
      .optional(),
    granularity: z.enum(['hour', 'day'], 'must be hour or day').default('hour'),
    /** Inclusive start, rounded down to its period; default: 24 periods before `to`. */
    from: datetime.optional(),
    /** Exclusive end, rounded up to its period; default: now. */
    to: datetime.optional(),
  })
  .refine((q) => q.tenant_id !== undefined || q.api_key_id !== undefined, {
    message: 'give tenant_id or api_key_id',
    path: ['tenant_id'],
  });
export type UsageQuery = z.infer<typeof usageQuery>;

export interface UsageWindow {
  granularity: 'hour' | 'day';
  from: Date;
  to: Date;
}

function floorTo(ms: number, periodMs: number): number {
  return Math.floor(ms / periodMs) * periodMs;
}

/** The periods asked for, whole and in UTC; null when the range is empty or too long (the issue). */
export function usageWindow(
  query: UsageQuery,
  nowMs: number,
): UsageWindow | { issue: string; field: string } {
  const period = query.granularity === 'hour' ? HOUR_MS : DAY_MS;
  const end = query.to === undefined ? nowMs : Date.parse(query.to);
  // The instants as given, before rounding: a `to` before `from` in one period is still no range.
  if (query.from !== undefined && Date.parse(query.from) >= end) {
    return query.to === undefined
      ? { field: 'from', issue: 'must be before now (to defaults to now)' }
      : { field: 'to', issue: 'must be after from' };
  }
  const to = floorTo(end - 1, period) + period;
  const from = query.from === undefined ? to - 24 * period : floorTo(Date.parse(query.from), period);
  const points = (to - from) / period;
  const max = MAX_USAGE_POINTS[query.granularity];
  if (points > max) return { field: 'from', issue: `at most ${max} ${query.granularity}s per request` };
  return { granularity: query.granularity, from: new Date(from), to: new Date(to) };
}

type ByStatus = Record<StatusClass, number>;
const noRequests = (): ByStatus => Object.fromEntries(STATUS_CLASSES.map((c) => [c, 0])) as ByStatus;

export interface UsagePoint {
  start: string;
  requests: number;
  by_status_class: ByStatus;
}

export interface UsageBreakdown {
  id: string | null;
  /** True for id `*`: the requests counted past the gateways' cardinality limits, not one id. */
  overflow: boolean;
  requests: number;
  by_status_class: ByStatus;
}

export interface UsageReport {
  tenant_id: string;
  api_key_id: string | null;
  route_id: string | null;
  user_id: string | null;
  granularity: 'hour' | 'day';
  from: string;
  to: string;
  requests: number;
  by_status_class: ByStatus;
  data: UsagePoint[];
  /** Over the whole range, most requests first (at most 20 each). */
  by_route: UsageBreakdown[];
  by_api_key: UsageBreakdown[];
  by_user: UsageBreakdown[];
}

const TOP = 20;

/** Default USAGE_QUERY_TIMEOUT_MS: how long one usage read's statements may run (each). */
export const DEFAULT_USAGE_QUERY_TIMEOUT_MS = 5_000;

/**
 * A usage read that ran past its statement timeout: the range holds more rows than one request may read
 * (a tenant's own issuer can mint a user per request, so a month of hours can be millions of rows).
 */
export class UsageTooExpensiveError extends Error {
  constructor(readonly timeoutMs: number) {
    super(`the usage read ran past ${timeoutMs} ms`);
    this.name = 'UsageTooExpensiveError';
  }
}

/** Usage reads one tenant may have running at once in one control-plane process. */
export const MAX_USAGE_READS_PER_TENANT = 2;

/**
 * Counts each tenant's usage reads in flight, so that one tenant's reads (each holding a pool
 * connection up to the statement timeout) cannot take the pool every tenant's admin API shares. The
 * tenant's callers with read access only hold at most `readersShareOf(max)` of them together: a viewer
 * keeping its reads running leaves the tenant's admins one to see who is flooding them.
 */
export interface UsageReadGate {
  /** Takes a place of the tenant for a caller with `access`: the function that ends the read, or a 429. */
  enter(tenantId: string, access: RequiredAccess): () => void;
}

export function createUsageReadGate(max = MAX_USAGE_READS_PER_TENANT): UsageReadGate {
  const running = createInFlightCounter(max);
  const readersMax = readersShareOf(max);
  const readers = createInFlightCounter(readersMax);
  const refuse = (issue: string) =>
    rateLimited(
      'admin_rate_limited',
      'too many usage reads of this tenant running: retry in 1 s',
      'usage_queries_in_flight',
      issue,
      1,
    );
  return {
    enter(tenantId, access) {
      const leaveReaders = access === 'write' ? NOTHING_HELD : readers.enter(tenantId);
      if (leaveReaders === null) {
        throw refuse(
          `at most ${readersMax} usage reads of one tenant's read-only callers at once (the rest of the ${max} are for its writers)`,
        );
      }
      const leave = running.enter(tenantId);
      if (leave === null) {
        leaveReaders();
        throw refuse(`at most ${max} usage reads of one tenant at once`);
      }
      return () => {
        leave();
        leaveReaders();
      };
    },
  };
}

const NOTHING_HELD = () => {};

/**
 * The report, read on one pooled connection in one read-only transaction whose statements are each cut
 * off after `timeoutMs` (UsageTooExpensiveError), so one tenant's reads hold one connection each, for a
 * bounded time, whatever its counts hold. A lost connection (or none to be had in time) is tried once
 * more on a new connection of its own, as the pool's other reads are (withConnectionRetry); then 503.
 */
export async function readUsage(
  pool: pg.Pool,
  tenantId: string,
  query: UsageQuery,
  window: UsageWindow,
  timeoutMs = DEFAULT_USAGE_QUERY_TIMEOUT_MS,
): Promise<UsageReport> {
  const tooExpensive = (ms: number) => new UsageTooExpensiveError(ms);
  return readOnceMoreIfLost(pool, (client) =>
    readOnlyWithTimeout(client, timeoutMs, tooExpensive, (db) => readUsageOn(db, tenantId, query, window)),
  );
}

async function readUsageOn(
  db: pg.ClientBase,
  tenantId: string,
  query: UsageQuery,
  window: UsageWindow,
): Promise<UsageReport> {
  const params = [
    tenantId,
    window.from.toISOString(),
    window.to.toISOString(),
    query.api_key_id ?? null,
    query.route_id ?? null,
    query.user_id ?? null,
  ];
  // The filters, on the columns of `usage_counts` under an alias ('' or 'u.').
  const where = (a = '') => `${a}tenant_id = $1 and ${a}hour >= $2 and ${a}hour < $3
     and ($4::text is null or ${a}api_key_id = $4) and ($5::text is null or ${a}route_id = $5)
     and ($6::text is null or ${a}user_id = $6)`;
  const truncate =
    window.granularity === 'hour' ? 'hour' : `date_trunc('day', hour at time zone 'UTC') at time zone 'UTC'`;
  // One after another: a connection runs one statement at a time.
  const series = await db.query<{ start: Date; status_class: StatusClass; requests: string }>(
    `select ${truncate} as start, status_class, sum(requests) as requests
       from usage_counts where ${where()} group by 1, 2 order by 1`,
    params,
  );
  const routes = await breakdown(db, 'route_id', where, params);
  const keys = await breakdown(db, 'api_key_id', where, params);
  const users = await breakdown(db, 'user_id', where, params);

  const period = window.granularity === 'hour' ? HOUR_MS : DAY_MS;
  const points = new Map<number, UsagePoint>();
  for (let at = window.from.getTime(); at < window.to.getTime(); at += period) {
    points.set(at, { start: new Date(at).toISOString(), requests: 0, by_status_class: noRequests() });
  }
  const totals = noRequests();
  for (const row of series.rows) {
    const point = points.get(row.start.getTime());
    const requests = Number(row.requests);
    if (point) {
      point.requests += requests;
      point.by_status_class[row.status_class] += requests;
    }
    totals[row.status_class] += requests;
  }
  return {
    tenant_id: tenantId,
    api_key_id: query.api_key_id ?? null,
    route_id: query.route_id ?? null,
    user_id: query.user_id ?? null,
    granularity: window.granularity,
    from: window.from.toISOString(),
    to: window.to.toISOString(),
    requests: Object.values(totals).reduce((sum, n) => sum + n, 0),
    by_status_class: totals,
    data: [...points.values()],
    by_route: routes,
    by_api_key: keys,
    by_user: users,
  };
}

async function breakdown(
  db: pg.ClientBase,
  column: 'route_id' | 'api_key_id' | 'user_id',
  where: (alias?: string) => string,
  params: unknown[],
): Promise<UsageBreakdown[]> {
  const { rows } = await db.query<{ id: string; status_class: StatusClass; requests: string }>(
    `with ranked as (
       select ${column} as id, sum(requests) as total from usage_counts where ${where()}
        group by 1 order by 2 desc, 1 limit ${TOP})
     select u.${column} as id, u.status_class, sum(u.requests) as requests
       from usage_counts u join ranked r on r.id = u.${column}
      where ${where('u.')}
      group by 1, 2`,
    params,
  );
  const byId = new Map<string, UsageBreakdown>();
  for (const row of rows) {
    const entry = byId.get(row.id) ?? {
      id: row.id === '' ? null : row.id,
      overflow: row.id === OVERFLOW_ID,
      requests: 0,
      by_status_class: noRequests(),
    };
    const requests = Number(row.requests);
    entry.requests += requests;
    entry.by_status_class[row.status_class] += requests;
    byId.set(row.id, entry);
  }
  return [...byId.values()].sort(
    (a, b) => b.requests - a.requests || String(a.id).localeCompare(String(b.id)),
  );
}
