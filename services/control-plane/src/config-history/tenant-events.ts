import {
  qualified,
  READ_MODELS_PROJECTION,
  READ_MODELS_SCHEMA,
} from '@vantageedge/projections/read-models/schema';
import { snapshotTenantOf } from '@vantageedge/projections/snapshots/fold';
import { type ControlPlaneEvent, isControlPlaneEvent } from '@vantageedge/shared/domain/events';
import type { EventStore, RecordedEvent } from '@vantageedge/shared/event-store/port';
import type pg from 'pg';
import { DomainError } from '../domain/errors.js';
import type { TenantFoldCache } from './tenant-folds.js';

/**
 * The events that shaped one tenant's gateway config in a range of global positions, in log order:
 * exactly the events the snapshot projector folds into that tenant's snapshot.
 *
 * Reading the whole log for one tenant would cost every tenant's history, so the tenant's streams are
 * found through the audit log (one row per event, with its stream revision, indexed by tenant), which
 * the read-model projector keeps up to its checkpoint; each stream is then read from the event store
 * itself, only the revisions the range holds. Events after that checkpoint (the audit log trails the
 * log by milliseconds, or more while its projector is down) are read from the log directly, never past
 * the range, so the answer never depends on how far the read models are.
 */

export interface TenantEventSource {
  store: EventStore;
  pool: pg.Pool;
  /** Folded configs kept between calls (tenant-folds.ts); default: the store's own cache. */
  folds?: TenantFoldCache | undefined;
  /**
   * At most this many events one fold reads from the event store (the tenant's, and every tenant's in
   * the part the audit log does not cover yet); past it `eventReadLimitExceeded`. Default: no limit.
   */
  maxEventsRead?: number | undefined;
  /** Each read of the event store is cut off after this long (ReadTimeoutError). Default: no limit. */
  readTimeoutMs?: number | undefined;
  /**
   * An admin read: the events a fold reads are charged to the tenant's config read budget
   * (config-read-budget.ts), and the fold stops with its 429 before a page once the budget is in debt.
   */
  chargedToReadBudget?: boolean | undefined;
  /** A read of a caller with read access only: charged to the tenant's readers' bucket of that budget. */
  chargedToReaders?: boolean | undefined;
}

/** The tenant's events of a part of the range, in log order, and the position the range is covered to. */
export interface TenantEventPage {
  events: ControlPlaneEvent[];
  /** Every event of the tenant at or before this position has been given, in this page or before. */
  through: bigint;
}

/** Default CONTROL_PLANE_CONFIG_READ_MAX_EVENTS: events one admin read's fold may read. */
export const DEFAULT_CONFIG_READ_MAX_EVENTS = 50_000;

/** CONTROL_PLANE_CONFIG_READ_MAX_EVENTS as a source's `maxEventsRead`: 0 is no limit. */
export const maxEventsReadOf = (setting: number | undefined): number | undefined =>
  setting === 0 ? undefined : (setting ?? DEFAULT_CONFIG_READ_MAX_EVENTS);

/**
 * 503 `read_limit_exceeded`, field `config_read_max_events`, Retry-After 1: the fold stopped before
 * reading more than `maxEvents` events. What it folded stays in the process's config cache, so the same
 * request sent again folds on from there.
 */
export const eventReadLimitExceeded = (maxEvents: number): DomainError =>
  new DomainError(
    'unavailable',
    `this config needs more than ${maxEvents} events of the event log read (CONTROL_PLANE_CONFIG_READ_MAX_EVENTS); the events read so far are kept: send the request again to go on from where this one stopped`,
    'config_read_max_events',
    {
      code: 'read_limit_exceeded',
      issue: `at most ${maxEvents} events read per config`,
      retryAfterSeconds: 1,
    },
  );

const STREAM_READS_IN_PARALLEL = 8;
/** Events per page: what one fold holds in memory at once, besides the config. */
const PAGE_EVENTS = 1_000;
/**
 * Bytes per page (events' `storedBytes`): a page ends after the event that reaches it, so a fold holds
 * and parses about this much at once however large the tenant's events (a thousand 30 KiB documents
 * would be 30 MB), and the config read budget is looked at again after about this much.
 */
const PAGE_BYTES = 1024 * 1024;

/**
 * The tenant's events with `after < position <= upTo` (`after` 0: from the start). Reads nothing
 * outside that range: neither a stream's older revisions nor anything past `upTo`. Holds them all:
 * folds read them page by page instead (`tenantEventPages`).
 */
export async function readTenantEvents(
  source: TenantEventSource,
  tenantId: string,
  upTo: bigint,
  after = 0n,
): Promise<ControlPlaneEvent[]> {
  const events: ControlPlaneEvent[] = [];
  for await (const page of tenantEventPages(source, tenantId, upTo, after)) events.push(...page.events);
  return events;
}

/**
 * The tenant's events with `after < position <= upTo`, in log order, a page (at most `PAGE_EVENTS`
 * events and about `PAGE_BYTES` read) at a time: a fold holds one page, however long the tenant's
 * history and however large its events. Throws `eventReadLimitExceeded` instead of reading past
 * `source.maxEventsRead` events.
 */
export async function* tenantEventPages(
  source: TenantEventSource,
  tenantId: string,
  upTo: bigint,
  after = 0n,
): AsyncGenerator<TenantEventPage> {
  if (upTo <= after) return;
  const budget = readBudget(source.maxEventsRead);
  const timeout = source.readTimeoutMs === undefined ? {} : { timeoutMs: source.readTimeoutMs };
  const keep = (event: RecordedEvent, from: bigint, through: bigint): event is ControlPlaneEvent =>
    event.position > from &&
    event.position <= through &&
    isControlPlaneEvent(event) &&
    snapshotTenantOf(event) === tenantId;

  // Read first: rows at or below the checkpoint were committed with it, so later pages find them all.
  const checkpoint = await readModelsCheckpoint(source.pool);
  const indexedUpTo = checkpoint < upTo ? checkpoint : upTo;
  for (let from = after; from < indexedUpTo; ) {
    const wanted = budget.pageSize();
    const rows = await indexedPage(source.pool, tenantId, from, indexedUpTo, wanted);
    budget.spend(rows.length);
    const whole = rows.length < wanted ? indexedUpTo : (rows.at(-1)?.position ?? indexedUpTo);
    const { read, through } = await readIndexedStreams(source.store, rows, whole, timeout);
    // Rows after a byte cut are left to the next page, and counted there.
    budget.refund(rows.filter((row) => row.position > through).length);
    const events = read.filter((event) => keep(event, from, through));
    yield { events: events.sort((a, b) => (a.position < b.position ? -1 : 1)), through };
    from = through;
  }
  // The part of the range the audit log does not cover yet, from the log itself.
  let from = checkpoint > after ? checkpoint : after;
  for await (const page of logPages(source, from, upTo, budget.pageSize)) {
    budget.spend(page.events.length);
    const pageFrom = from;
    yield {
      events: page.events.filter((event) => keep(event, pageFrom, page.through)),
      through: page.through,
    };
    from = page.through;
  }
}

/**
 * Every tenant's events of the log itself with `from < position <= upTo` (the part the read models do
 * not index yet), in log order, at most `pageSize()` events and about PAGE_BYTES a page; `through` as a
 * TenantEventPage's.
 * Positions are distinct integers, so (from, upTo] holds at most upTo - from events: a page never
 * reaches past upTo.
 */
export async function* logPages(
  source: Pick<TenantEventSource, 'store' | 'readTimeoutMs'>,
  from: bigint,
  upTo: bigint,
  pageSize: () => number = () => PAGE_EVENTS,
): AsyncGenerator<{ events: RecordedEvent[]; through: bigint }> {
  const timeout = source.readTimeoutMs === undefined ? {} : { timeoutMs: source.readTimeoutMs };
  while (from < upTo) {
    const left = upTo - from;
    const wanted = Math.min(pageSize(), left < BigInt(PAGE_EVENTS) ? Number(left) : PAGE_EVENTS);
    const events = await source.store.readAll({
      fromPosition: from,
      maxCount: wanted,
      maxBytes: PAGE_BYTES,
      ...timeout,
    });
    const full = events.length === wanted || storedBytesOf(events) >= PAGE_BYTES;
    const through = full ? (events.at(-1)?.position ?? upTo) : upTo;
    yield { events, through };
    from = through;
  }
}

function storedBytesOf(events: readonly RecordedEvent[]): number {
  return events.reduce((sum, event) => sum + event.storedBytes, 0);
}

/**
 * Counts the events a walk reads. A page asks for at most what is left of the budget, or for one event
 * (or audit row) once it is spent: finding one more means the walk needs more than the budget.
 */
function readBudget(maxEvents: number | undefined) {
  let left = maxEvents ?? Number.POSITIVE_INFINITY;
  return {
    pageSize: () => Math.max(1, Math.min(PAGE_EVENTS, left)),
    spend(count: number) {
      if (count > left) throw eventReadLimitExceeded(maxEvents ?? 0);
      left -= count;
    },
    /** Gives back what a page counted but left to the next one. */
    refund(count: number) {
      left += count;
    },
  };
}

interface IndexedStream {
  stream: string;
  /** The first and last revision of the stream the page holds. */
  first: bigint;
  last: bigint;
  /** The page's rows of the stream, in log order. */
  rows: IndexedRow[];
}

interface IndexedRow {
  position: bigint;
  stream: string;
  revision: bigint;
}

/** Each stream of the rows with the revisions they hold: a stream's rows are consecutive revisions. */
function revisionRanges(rows: readonly IndexedRow[]): IndexedStream[] {
  const streams = new Map<string, IndexedStream>();
  for (const row of rows) {
    const { stream, revision } = row;
    const known = streams.get(stream);
    if (known === undefined) {
      streams.set(stream, { stream, first: revision, last: revision, rows: [row] });
      continue;
    }
    known.rows.push(row);
    if (revision > known.last) known.last = revision;
    else if (revision < known.first) known.first = revision;
  }
  return [...streams.values()];
}

/**
 * The events of the audit rows' streams, read from the event store, `STREAM_READS_IN_PARALLEL` streams
 * at a time (in turn), at most about PAGE_BYTES of them. Side by side, each stream may fill its share of what is
 * left of the page; a stream cut at its share is read on with the bytes the others left. A stream the
 * page has no bytes left for ends the page before its first event not read: `through` is `whole` or
 * earlier, never before the first row (the first read returns at least its first event), so the next
 * page goes on from there.
 */
async function readIndexedStreams(
  store: EventStore,
  rows: readonly IndexedRow[],
  whole: bigint,
  timeout: { timeoutMs?: number },
): Promise<{ read: RecordedEvent[]; through: bigint }> {
  const streams = revisionRanges(rows);
  const read: RecordedEvent[] = [];
  let through = whole;
  const endBefore = (stream: IndexedStream | undefined, revision: bigint) => {
    const row = stream?.rows.find((candidate) => candidate.revision >= revision);
    if (row !== undefined && row.position - 1n < through) through = row.position - 1n;
  };
  let bytesLeft = PAGE_BYTES;
  for (let start = 0; start < streams.length; start += STREAM_READS_IN_PARALLEL) {
    const next = streams[start];
    if (bytesLeft <= 0) {
      endBefore(next, next?.first ?? 0n);
      break;
    }
    let unread = streams
      .slice(start, start + STREAM_READS_IN_PARALLEL)
      .map((stream) => ({ stream, from: stream.first }));
    while (unread.length > 0 && bytesLeft > 0) {
      const share = Math.max(1, Math.floor(bytesLeft / unread.length));
      // One read after the other: each is a query on a connection of the admin API's pool, which its
      // in-flight limits share out one per request (read side by side, one tenant admin's few reads of
      // old configs held the whole pool, the platform admins' and /readyz's connections too).
      const batches: RecordedEvent[][] = [];
      for (const { stream, from } of unread) {
        batches.push(
          await store.readStream(stream.stream, {
            fromRevision: from,
            maxCount: Number(stream.last - from + 1n),
            maxBytes: share,
            ...timeout,
          }),
        );
      }
      unread = unread.flatMap((cursor, index) => {
        const batch = batches[index] ?? [];
        read.push(...batch);
        bytesLeft -= storedBytesOf(batch);
        const lastRead = batch.at(-1)?.revision;
        return lastRead !== undefined && lastRead < cursor.stream.last
          ? [{ stream: cursor.stream, from: lastRead + 1n }]
          : [];
      });
    }
    for (const { stream, from } of unread) endBefore(stream, from);
  }
  return { read, through };
}

/** The read models' checkpoint: the audit log holds every event at or below it. */
async function readModelsCheckpoint(pool: pg.Pool): Promise<bigint> {
  const { rows } = await pool.query<{ position: string }>(
    'select coalesce((select position from projection_checkpoints where name = $1), 0)::text as position',
    [READ_MODELS_PROJECTION],
  );
  return BigInt(rows[0]?.position ?? '0');
}

/**
 * The first `limit` of the tenant's config events the audit log knows in (after, upTo], in log order,
 * through the partial index audit_log_tenant_config_events (migration 0280), which leaves out the streams
 * whose events never change a snapshot (cache purges, rollback markers): the cost is the page's, not the
 * tenant's cache purges nor other tenants' rows. The resource types are written out as the index's
 * predicate has them, and its key is `-position` so that no other index gives this order (the planner,
 * taking tenant and resource type for independent, would walk the primary key past every other row
 * instead). The statistics of `-position` (migration 0300) let it see how many of a tenant's events a
 * range holds, so that it takes the page off the index rather than reading and sorting all of them.
 * Ordered by the column, not by the selected text (which sorts "19" before "2").
 */
export function indexedPageQuery(
  tenantId: string,
  { after, upTo, limit }: { after: bigint; upTo: bigint; limit: number },
): { text: string; values: unknown[] } {
  return {
    text: `select position::text as position, stream, stream_revision::text as revision
       from ${qualified(READ_MODELS_SCHEMA, 'audit_log')}
      where tenant_id = $1 and resource_type not in ('cache', 'config')
        and -audit_log.position < -$2::bigint and -audit_log.position >= -$3::bigint
      order by -audit_log.position desc limit $4`,
    values: [tenantId, after.toString(), upTo.toString(), limit],
  };
}

async function indexedPage(
  pool: pg.Pool,
  tenantId: string,
  after: bigint,
  upTo: bigint,
  limit: number,
): Promise<IndexedRow[]> {
  const { rows } = await pool.query<{ position: string; stream: string; revision: string }>(
    indexedPageQuery(tenantId, { after, upTo, limit }),
  );
  return rows.map((row) => ({
    position: BigInt(row.position),
    stream: row.stream,
    revision: BigInt(row.revision),
  }));
}
