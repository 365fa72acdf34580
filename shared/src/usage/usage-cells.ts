/**
 * What the gateways count per request and the usage flusher adds into PostgreSQL: requests per
 * tenant, route, API key, user and status class in one UTC hour — a usage cell. A cell is encoded as
 * one string (a Redis hash field): its fields joined by U+001F, which none of them can contain (ids are
 * uuids, Clerk user ids are `user_…`, the hour is epoch seconds).
 */

export const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;
export type StatusClass = (typeof STATUS_CLASSES)[number];

export interface UsageCell {
  tenantId: string;
  /** '' when the request matched no route. */
  routeId: string;
  /** '' when no API key authenticated the request. */
  apiKeyId: string;
  /** The Clerk user (or service) that authenticated the request; '' for none. */
  userId: string;
  statusClass: StatusClass;
  /** Start of the UTC hour, seconds since the epoch. */
  hour: number;
}

const SEPARATOR = '\u001f';

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
  return [cell.tenantId, cell.routeId, cell.apiKeyId, cell.userId, cell.statusClass, cell.hour].join(
    SEPARATOR,
  );
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
  return { tenantId, routeId, apiKeyId, userId, statusClass: statusClass as StatusClass, hour: Number(hour) };
}

/** One replica's counts since its last flush: encoded cell → requests. */
export type UsageCounts = Map<string, number>;

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
