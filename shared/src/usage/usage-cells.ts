import { randomUUID } from 'node:crypto';

/**
 * What the gateways count per request and the usage flusher adds into PostgreSQL: requests per
 * tenant, route, API key, user and status class in one UTC hour — a usage cell. A cell is encoded as
 * one string (a Redis hash field): its fields joined by U+001F, which none of them can contain (ids are
 * uuids, the hour is epoch seconds, and the gateways count a user id with control characters as
 * OVERFLOW_ID — a tenant's own issuer may put anything in `sub`).
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

/** A user id a cell can carry as it is: not too long, and no control character (U+001F, NUL). */
export function isStorableUserId(userId: string): boolean {
  if (userId.length > MAX_USAGE_USER_ID_LENGTH) return false;
  for (let i = 0; i < userId.length; i++) {
    const code = userId.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) return false;
  }
  return true;
}

export function decodeUsageCell(field: string): UsageCell | null {
  const parts = field.split(SEPARATOR);
  if (parts.length !== 6) return null;
  const [tenantId, routeId, apiKeyId, userId, statusClass, hour] = parts as [
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  if (!(STATUS_CLASSES as readonly string[]).includes(statusClass) || !/^\d+$/.test(hour)) return null;
  if (!/^[0-9a-f-]{36}$/.test(tenantId)) return null;
  // PostgreSQL text cannot hold NUL: one such cell would fail its whole batch, and every batch after it.
  if (field.includes('\u0000')) return null;
  return { tenantId, routeId, apiKeyId, userId, statusClass: statusClass as StatusClass, hour: Number(hour) };
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
  /** Ids of the batches written and not yet removed. */
  list(): Promise<string[]>;
  read(batchId: string): Promise<UsageCounts>;
  remove(batchId: string): Promise<void>;
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
}
