import type { QuotaPolicy } from '../domain/gateway-config.js';

/**
 * The protocol of request quotas, shared by the gateways (which count and enforce) and the control
 * plane (which shows what is left in a key's GET): the periods, their counters' Redis keys and the
 * Lua script that checks and counts every window of a request at once.
 *
 * Periods are UTC calendar days and months. A counter's key names its period
 * (`<prefix>q:{<tenant_id>}:key:<api_key_id>:day:20261127`), so a new period starts at zero by itself;
 * the key expires a day after its period ends. Every key of a tenant has the `{tenant_id}` hash tag:
 * one script touches them together, also on Redis Cluster.
 *
 * Which period a request falls in is Redis's clock's to say (TIME in the script), never a replica's:
 * a caller names the windows of the period its clock (an estimate of Redis's) is in, and the script
 * counts nothing when Redis's clock is in another one; it answers its time instead, and the caller
 * asks again with that period's windows. So replicas whose clocks disagree, around midnight or for
 * good, count every request into the same period.
 *
 * A tenant's admins can create and revoke keys faster than their counters expire, so the API keys
 * with counters of their own are bounded per tenant and period: a ledger (`…:keys:day:20261127`, a set
 * of key ids) admits at most `tenantMaxKeys`; a key past it counts on the period's shared overflow
 * counter (`…:key:*:day:20261127`) — still refused at its limit, never unmetered, never reset.
 */

export type QuotaPeriod = 'day' | 'month';
export type QuotaSubject = { kind: 'tenant' } | { kind: 'api_key'; id: string };

export interface QuotaWindow {
  /** `tenant` or `api_key`: whose quota (a request may be under both). */
  subject: QuotaSubject['kind'];
  period: QuotaPeriod;
  limit: number;
  /** The Redis key of this period's counter. */
  key: string;
  /** Milliseconds since the epoch when the period starts. */
  startsAt: number;
  /** Milliseconds since the epoch when the period ends (the next starts at zero). */
  resetsAt: number;
  /** An API key's window: the tenant's ledger of keys with counters this period (see above). */
  ledger?: KeyLedger;
}

export interface KeyLedger {
  /** The set of key ids with a counter of their own in this period. */
  key: string;
  /** The counter of the keys past the ledger's bound. */
  overflowKey: string;
  /** This key's id. */
  member: string;
}

const DAY_MS = 86_400_000;

export function periodBounds(
  period: QuotaPeriod,
  nowMs: number,
): { start: number; end: number; label: string } {
  const now = new Date(nowMs);
  const year = now.getUTCFullYear();
  const month = now.getUTCMonth();
  const yearMonth = `${String(year).padStart(4, '0')}${String(month + 1).padStart(2, '0')}`;
  if (period === 'day') {
    const start = Math.floor(nowMs / DAY_MS) * DAY_MS;
    return { start, end: start + DAY_MS, label: `${yearMonth}${String(now.getUTCDate()).padStart(2, '0')}` };
  }
  return { start: utcMonthStart(year, month), end: utcMonthStart(year, month + 1), label: yearMonth };
}

/** Midnight UTC of the month's first day (Date.UTC would read the years 0–99 as 1900–1999). */
function utcMonthStart(year: number, month: number): number {
  const start = new Date(0);
  start.setUTCFullYear(year, month, 1);
  return start.getTime();
}

export function quotaCounterKey(
  keyPrefix: string,
  tenantId: string,
  subject: QuotaSubject,
  period: QuotaPeriod,
  label: string,
): string {
  const who = subject.kind === 'tenant' ? 'tenant' : `key:${subject.id}`;
  return `${keyPrefix}q:{${tenantId}}:${who}:${period}:${label}`;
}

/** The windows a quota policy opens now for one subject (none without a policy). */
export function quotaWindows(
  keyPrefix: string,
  tenantId: string,
  subject: QuotaSubject,
  quota: QuotaPolicy | null | undefined,
  nowMs: number,
): QuotaWindow[] {
  if (!quota) return [];
  const windows: QuotaWindow[] = [];
  const add = (period: QuotaPeriod, limit: number | undefined) => {
    if (limit === undefined) return;
    const bounds = periodBounds(period, nowMs);
    windows.push({
      subject: subject.kind,
      period,
      limit,
      key: quotaCounterKey(keyPrefix, tenantId, subject, period, bounds.label),
      startsAt: bounds.start,
      resetsAt: bounds.end,
      ...(subject.kind === 'api_key'
        ? {
            ledger: {
              key: `${keyPrefix}q:{${tenantId}}:keys:${period}:${bounds.label}`,
              overflowKey: quotaCounterKey(
                keyPrefix,
                tenantId,
                { kind: 'api_key', id: '*' },
                period,
                bounds.label,
              ),
              member: subject.id,
            },
          }
        : {}),
    });
  };
  add('day', quota.requests_per_day);
  add('month', quota.requests_per_month);
  return windows;
}

/**
 * The windows one request spends, in the order the gateways check them: the tenant's, then those of
 * the API key authentication identified the caller by (none on a public route, which reads no
 * credentials). The gateways' quota stage and the control plane's explain both compute them here.
 */
export function requestQuotaWindows(
  keyPrefix: string,
  tenantId: string,
  tenantQuota: QuotaPolicy | null | undefined,
  apiKey: { id: string; quota: QuotaPolicy | null | undefined } | undefined,
  nowMs: number,
): QuotaWindow[] {
  const windows = quotaWindows(keyPrefix, tenantId, { kind: 'tenant' }, tenantQuota, nowMs);
  if (apiKey !== undefined) {
    windows.push(
      ...quotaWindows(keyPrefix, tenantId, { kind: 'api_key', id: apiKey.id }, apiKey.quota, nowMs),
    );
  }
  return windows;
}

/** The message of the gateways' 429 `quota_exceeded` for a full window with `used` requests counted. */
export function quotaExceededMessage(window: QuotaWindow, used: number): string {
  const whose = window.subject === 'tenant' ? "the tenant's" : "the API key's";
  const period = window.period === 'day' ? 'daily' : 'monthly';
  return `${whose} ${period} quota of ${window.limit} requests is used up (${used} made); it resets at ${new Date(window.resetsAt).toISOString()}`;
}

/**
 * KEYS: per window its counter, then per window its ledger and its overflow counter (the counter
 * itself for a tenant's window). ARGV: per window its limit, then its expiry (ms epoch), then its
 * ledger member ('' for a tenant's window); then the most keys a ledger admits; last, when the windows'
 * periods all start and end (ms epoch: the latest start, the earliest end).
 * Redis's clock (TIME, in ms) decides: outside that span the windows are another period's, and nothing
 * is read or counted: returns {2, time}.
 * A key's counter that is not there and not in the ledger is created only while the ledger has room;
 * else the key counts on the overflow counter. If any counter has reached its limit, nothing is
 * counted (and nothing created): returns {0, time, index (1-based) of the full window that expires
 * last, its count} — the request is refused until every full window has ended, so that one's end is
 * when to retry (the first full one among those ending together). Otherwise every counter goes up by
 * one: returns {1, time, count1, count2, …}.
 */
export const CONSUME_QUOTA_SCRIPT = `
local n = #KEYS / 3
local max_keys = tonumber(ARGV[3 * n + 1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now < tonumber(ARGV[3 * n + 2]) or now >= tonumber(ARGV[3 * n + 3]) then return {2, now} end
local counters = {}
local joins = {}
local full = nil
local full_used = 0
for i = 1, n do
  counters[i] = KEYS[i]
  local value = redis.call('GET', KEYS[i])
  local member = ARGV[2 * n + i]
  if value == false and member ~= '' and redis.call('SISMEMBER', KEYS[n + i], member) == 0 then
    if redis.call('SCARD', KEYS[n + i]) < max_keys then
      joins[i] = true
    else
      counters[i] = KEYS[2 * n + i]
      value = redis.call('GET', counters[i])
    end
  end
  local used = tonumber(value or '0')
  if used >= tonumber(ARGV[i]) and (full == nil or tonumber(ARGV[n + i]) > tonumber(ARGV[n + full])) then
    full = i
    full_used = used
  end
end
if full ~= nil then return {0, now, full, full_used} end
local out = {1, now}
for i = 1, n do
  local used = redis.call('INCR', counters[i])
  if used == 1 then redis.call('PEXPIREAT', counters[i], ARGV[n + i]) end
  if joins[i] and redis.call('SADD', KEYS[n + i], ARGV[2 * n + i]) == 1 then
    redis.call('PEXPIREAT', KEYS[n + i], ARGV[n + i])
  end
  out[i + 2] = used
end
return out
`;

/**
 * Of the windows whose count has reached its limit, the one a refused request waits for: the one that
 * ends last (the first of those ending together); -1 when none is full. CONSUME_QUOTA_SCRIPT picks the same.
 */
export function refusingWindowIndex(windows: readonly QuotaWindow[], used: readonly number[]): number {
  let refusing = -1;
  windows.forEach((window, index) => {
    if ((used[index] ?? 0) < window.limit) return;
    if (refusing < 0 || window.resetsAt > windows[refusing]!.resetsAt) refusing = index;
  });
  return refusing;
}

/** A counter expires a day after its period, so a late reader still finds the final count. */
export function counterExpiry(window: QuotaWindow): number {
  return window.resetsAt + DAY_MS;
}

/** When the windows' periods have all begun (ms epoch): the latest start. */
export function windowsStart(windows: readonly QuotaWindow[]): number {
  let start = Number.NEGATIVE_INFINITY;
  for (const window of windows) if (window.startsAt > start) start = window.startsAt;
  return start;
}

/** When the first of the windows' periods ends (ms epoch): the earliest end. */
export function windowsEnd(windows: readonly QuotaWindow[]): number {
  let end = Number.POSITIVE_INFINITY;
  for (const window of windows) if (window.resetsAt < end) end = window.resetsAt;
  return end;
}

/** `storeNow`: the counters' clock (ms epoch) when they decided, the time their periods are of. */
export type QuotaDecision =
  | { allowed: true; used: number[]; storeNow: number }
  /** `index` is the full window that ends last (0-based): until then the request is refused; `used` its count. */
  | { allowed: false; index: number; used: number; storeNow: number }
  /** The counters' clock is in another period than the windows': nothing was read or counted. */
  | { allowed: null; storeNow: number };

/** Reads the script's answer. */
export function parseQuotaReply(reply: unknown): QuotaDecision {
  if (!Array.isArray(reply) || reply.length < 2) throw new Error('unexpected quota script reply');
  const outcome = Number(reply[0]);
  const storeNow = Number(reply[1]);
  if (outcome === 2) return { allowed: null, storeNow };
  if (outcome === 1) return { allowed: true, used: reply.slice(2).map(Number), storeNow };
  return { allowed: false, index: Number(reply[2] ?? 1) - 1, used: Number(reply[3] ?? 0), storeNow };
}
