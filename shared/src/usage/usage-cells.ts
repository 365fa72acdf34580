import { randomUUID } from 'node:crypto';

/**
 * What the gateways count per request and the usage flusher adds into PostgreSQL: requests per
 * tenant, route, API key, user and status class in one UTC hour — a usage cell. A cell is encoded as
 * one string (a Redis hash field): its fields joined by U+001F, which none of them can contain (ids are
 * uuids, the hour is epoch seconds, and the gateways count a user id with control characters as
 * OVERFLOW_ID — a tenant's own issuer may put anything in `sub`; decodeUsageCell does the same with
 * cells gateways of an earlier version wrote).
 */

export const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;
export type StatusClass = (typeof STATUS_CLASSES)[number];

export interface UsageCell {
  tenantId: string;
  /** '' when the request matched no route. */
  routeId: string;
  /** '' when no API key authenticated the request. */
  apiKeyId: string;
  /** The Clerk user (or service) that authenticated the request; '' for none; OVERFLOW_ID: see there. */
  userId: string;
  statusClass: StatusClass;
  /** Start of the UTC hour, seconds since the epoch. */
  hour: number;
}

const SEPARATOR = '\u001f';

/**
 * The id under which a gateway counts what it does not break down (cardinality limits, like an
 * OpenTelemetry overflow series): as user id, the requests of a tenant's users beyond
 * GATEWAY_USAGE_MAX_USERS_PER_TENANT in one batch (and of user ids longer than
 * MAX_USAGE_USER_ID_LENGTH or with control characters); as route, API key and user id together, the
 * requests of a tenant whose cells reached its share of GATEWAY_USAGE_MAX_CELLS. The request counts
 * stay exact; only that breakdown is lost. Never a uuid, so never a real route or key; a real user id
 * `*` is counted with them.
 */
export const OVERFLOW_ID = '*';

/** Longest user id counted as itself (the longest GET /api/v1/usage accepts); longer ones: OVERFLOW_ID. */
export const MAX_USAGE_USER_ID_LENGTH = 200;

export function statusClassOf(status: number): StatusClass {
  if (status >= 500) return '5xx';
  if (status >= 400) return '4xx';
  if (status >= 300) return '3xx';
  if (status >= 200) return '2xx';
  return '1xx';
}

export function hourOf(nowMs: number): number {
  return Math.floor(nowMs / 3_600_000) * 3_600;
}

export function encodeUsageCell(cell: UsageCell): string {
  return usageCellKey(cell.tenantId, cell.routeId, cell.apiKeyId, cell.userId, cell.statusClass, cell.hour);
}

/** encodeUsageCell without the cell object: one string, for the gateways' per-request path. */
export function usageCellKey(
  tenantId: string,
  routeId: string,
  apiKeyId: string,
  userId: string,
  statusClass: StatusClass,
  hour: number,
): string {
  return `${tenantId}${SEPARATOR}${routeId}${SEPARATOR}${apiKeyId}${SEPARATOR}${userId}${SEPARATOR}${statusClass}${SEPARATOR}${hour}`;
}

/**
 * A user id a cell can carry as it is: not too long, no control character (U+001F, NUL), and
 * well-formed Unicode. A lone surrogate (a `sub` of "\ud800" is valid JSON) becomes U+FFFD when
 * written to Redis as UTF-8, so two such ids would land in one hash field and one count overwrite the other.
 */
export function isStorableUserId(userId: string): boolean {
  if (userId.length > MAX_USAGE_USER_ID_LENGTH) return false;
  for (let i = 0; i < userId.length; i++) {
    const code = userId.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) return false;
    if (code >= 0xdc00 && code <= 0xdfff) return false; // a low surrogate with no high one before it
    if (code >= 0xd800 && code <= 0xdbff) {
      const next = userId.charCodeAt(i + 1);
      if (!(next >= 0xdc00 && next <= 0xdfff)) return false;
      i++; // the pair is one character
    }
  }
  return true;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** The last hour PostgreSQL is given as an ISO time it parses (9999-12-31T23:00Z; later years are `+…`). */
const MAX_HOUR = 253_402_297_200;

/** A route or API key id as a cell carries it: a uuid, '' (none) or OVERFLOW_ID; anything else: OVERFLOW_ID. */
function storableId(id: string): string {
  return id === '' || id === OVERFLOW_ID || UUID.test(id) ? id : OVERFLOW_ID;
}

/**
 * A cell as the flusher adds it into usage_counts, or null for one that names no tenant or hour. Every
 * value it returns is one PostgreSQL stores and indexes (usage_counts_pkey holds all of them: a btree
 * row is at most 2704 bytes), so no cell can fail its batch, whoever wrote it — current gateways,
 * gateways of an earlier version (a rolling upgrade), batches already in Redis:
 * - a user id that fails isStorableUserId (over MAX_USAGE_USER_ID_LENGTH, a control character, NUL,
 *   the separator itself, a lone surrogate) is OVERFLOW_ID, as current gateways count it;
 * - a route or API key id that is not a uuid, '' or OVERFLOW_ID (what gateways write) is OVERFLOW_ID;
 * - a tenant id that is not a uuid, or an hour past year 9999, is no cell: null (skipped).
 * Requests are never lost to the first two: only their breakdown is (the tenant's totals stay exact).
 */
export function decodeUsageCell(field: string): UsageCell | null {
  const parts = field.split(SEPARATOR);
  // Tenant, route, key, status class and hour never hold the separator; a user id may (a gateway of
  // an earlier version wrote any `sub`): it is what lies between.
  if (parts.length < 6) return null;
  const tenantId = parts[0]!;
  const statusClass = parts.at(-2)!;
  const hour = parts.at(-1)!;
  if (!(STATUS_CLASSES as readonly string[]).includes(statusClass)) return null;
  if (!/^\d{1,15}$/.test(hour) || Number(hour) > MAX_HOUR) return null;
  if (!UUID.test(tenantId)) return null;
  const userId = parts.length === 6 ? parts[3]! : OVERFLOW_ID;
  return {
    tenantId,
    routeId: storableId(parts[1]!),
    apiKeyId: storableId(parts[2]!),
    userId: isStorableUserId(userId) ? userId : OVERFLOW_ID,
    statusClass: statusClass as StatusClass,
    hour: Number(hour),
  };
}

/** One replica's counts since its last flush: encoded cell → requests. */
export type UsageCounts = Map<string, number>;

/**
 * A new batch id: the replica, a uuid, and when the batch was made (`…:t<epoch ms>`), so the flusher
 * can refuse a batch older than the window in which it remembers applied ids.
 */
export function newUsageBatchId(replicaId: string, nowMs: number): string {
  return `${replicaId}:${randomUUID()}:t${Math.trunc(nowMs)}`;
}

/** When a batch was made (newUsageBatchId); undefined for ids without it (gateways before it). */
export function usageBatchCreatedMs(batchId: string): number | undefined {
  const match = /:t(\d{1,15})$/.exec(batchId);
  return match ? Number(match[1]) : undefined;
}

/**
 * Where gateways leave their counts and the usage flusher picks them up. A batch has a globally
 * unique id (replica id + uuid); writing the same batch again (a retry) changes nothing, and the
 * flusher records every batch it applied, so each batch is added exactly once.
 */
export interface UsageBatchStore {
  write(batchId: string, counts: UsageCounts): Promise<void>;
  /** Ids of the batches written and not yet removed (nor moved aside). */
  list(): Promise<string[]>;
  read(batchId: string): Promise<UsageCounts>;
  remove(batchId: string): Promise<void>;
  /**
   * Takes a batch the flusher keeps failing to add out of the pending ones, counts kept, for an
   * operator to look at (and put back): `list` no longer names it.
   */
  moveAside(batchId: string): Promise<void>;
  /**
   * The store's clock (ms epoch), which the gateways name batches by (StoreClock): a batch's age is
   * measured on it, not on the flusher's host clock. Without it, the flusher's own clock.
   */
  time?(): Promise<number>;
}

/** In one process (make dev without Redis, tests): the gateway and the flusher share this object. */
export class InMemoryUsageBatchStore implements UsageBatchStore {
  private readonly batches = new Map<string, UsageCounts>();

  async write(batchId: string, counts: UsageCounts): Promise<void> {
    this.batches.set(batchId, new Map(counts));
  }
  async list(): Promise<string[]> {
    return [...this.batches.keys()];
  }
  async read(batchId: string): Promise<UsageCounts> {
    return new Map(this.batches.get(batchId) ?? []);
  }
  async remove(batchId: string): Promise<void> {
    this.batches.delete(batchId);
  }
  /** Batches moved aside, by id (in memory: until the process ends). */
  readonly movedAside = new Map<string, UsageCounts>();
  async moveAside(batchId: string): Promise<void> {
    const counts = this.batches.get(batchId);
    if (counts !== undefined) this.movedAside.set(batchId, counts);
    this.batches.delete(batchId);
  }
}
