import { createHash, randomUUID } from 'node:crypto';
import type { EventStore, RecordedEvent } from '@vantageedge/shared/event-store/port';
import { repeatable, StoreUnavailableError } from '@vantageedge/shared/postgres/lost-connections';
import type pg from 'pg';
import type { ReplayGuard } from '../commands/context.js';
import { ApiError, errorBody } from './errors.js';
import { HEADER_FORMATS } from './header-formats.js';
import type { SealedJson } from './sealed-json.js';

/** A command response worth replaying. */
export interface StoredResponse {
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

export type IdempotencyClaim =
  /** `attempt`: this request's token (for `release`). */
  { kind: 'claimed'; attempt: string } | { kind: 'replay'; response: StoredResponse; guard: ReplayGuard };

const LOCK_SECONDS = 30;
const RETENTION_HOURS = 24;
/** Events read per batch while looking for an abandoned attempt's events. */
const SCAN_BATCH = 500;

/** The request holding a key (migration 0205). */
interface Attempt {
  /** A token of this request alone. */
  id: string;
  /** The correlation_id of every event the command appends. */
  requestId: string;
  /** The event-store position before it ran. */
  afterPosition: bigint;
}

interface KeyRow {
  request_hash: string;
  state: string;
  /** Seconds until the holder's lock ends (0: it ended). */
  locked_seconds: number;
  response_status: number | null;
  response_headers: Record<string, string> | null;
  response_body: unknown;
  replay_tenant_id: string | null;
  replay_platform_admin_only: boolean;
  attempt_id: string | null;
  attempt_request_id: string | null;
  attempt_after_position: string | null;
}

export function requestHash(method: string, path: string, body: unknown): string {
  return createHash('sha256')
    .update(`${method} ${path}\n${JSON.stringify(body ?? null)}`)
    .digest('hex');
}

/**
 * Idempotency-Key records in PostgreSQL (migrations 0010, 0050, 0205), following the IETF httpapi draft:
 * same key + same request → the first response again (nothing appended); same key + another request →
 * 422 idempotency_key_reused; same key while the first is still running → 409 conflict.
 * Only successful responses are stored: a failed command appended nothing and may be retried.
 * Each stored response keeps its replay guard (the tenant it is about): a replay re-checks the
 * caller's access first, since the answer may hold an API key's plaintext.
 *
 * A key whose holder stopped without an answer — its process died, or PostgreSQL went away while its
 * events were being committed (503 store_unavailable, outcome unknown) — stays in progress until its lock
 * ends; then the event log decides: no event of that attempt → the next request with the key runs;
 * events → it answers 409 idempotency_answer_lost (applied, answer lost) and never runs it twice.
 * Every statement here is `repeatable`: sent again on a new connection after a lost one.
 */
export class IdempotencyStore {
  constructor(
    private readonly pool: pg.Pool,
    /** Response bodies are stored encrypted: an issued API key's plaintext is in them. */
    private readonly sealer: SealedJson,
    /** The event log an abandoned attempt's events are looked for in. */
    private readonly log: Pick<EventStore, 'headPosition' | 'readAll'>,
  ) {}

  static validKey(key: string): string {
    if (!HEADER_FORMATS.idempotencyKey.test(key)) {
      throw new ApiError(400, 'validation_failed', 'Idempotency-Key must be 1–255 visible ASCII characters', [
        { field: 'idempotency-key', issue: 'invalid' },
      ]);
    }
    return key;
  }

  /** `requestId`: the correlation_id of the events the command will append. */
  async claim(caller: string, key: string, hash: string, requestId: string): Promise<IdempotencyClaim> {
    const attempt = { id: randomUUID(), requestId, afterPosition: await this.log.headPosition() };
    return this.claimAs(caller, key, hash, attempt);
  }

  private async claimAs(
    caller: string,
    key: string,
    hash: string,
    attempt: Attempt,
  ): Promise<IdempotencyClaim> {
    const inserted = await this.pool.query(
      repeatable({
        text: `insert into control_plane_idempotency_keys as k (caller, key, request_hash, state, locked_until,
                 attempt_id, attempt_request_id, attempt_after_position)
               values ($1, $2, $3, 'in_progress', now() + make_interval(secs => $4), $6, $7, $8)
               on conflict (caller, key) do update
                 set request_hash = excluded.request_hash, state = 'in_progress', locked_until = excluded.locked_until,
                     response_status = null, response_headers = null, response_body = null, created_at = now(),
                     replay_tenant_id = null, replay_platform_admin_only = false, attempt_id = excluded.attempt_id,
                     attempt_request_id = excluded.attempt_request_id,
                     attempt_after_position = excluded.attempt_after_position
                 where (k.state = 'in_progress' and k.attempt_id = excluded.attempt_id)
                    or k.created_at < now() - make_interval(hours => $5)
               returning 1`,
        values: [
          caller,
          key,
          hash,
          LOCK_SECONDS,
          RETENTION_HOURS,
          attempt.id,
          attempt.requestId,
          attempt.afterPosition.toString(),
        ],
      }),
    );
    if (inserted.rowCount === 1) return { kind: 'claimed', attempt: attempt.id };
    const existing = await this.pool.query<KeyRow>(
      `select request_hash, state, response_status, response_headers, response_body, replay_tenant_id,
              replay_platform_admin_only, attempt_id, attempt_request_id, attempt_after_position::text,
              greatest(0, ceil(extract(epoch from locked_until - now())))::int as locked_seconds
         from control_plane_idempotency_keys where caller = $1 and key = $2`,
      [caller, key],
    );
    const row = existing.rows[0];
    if (!row) return this.claimAs(caller, key, hash, attempt); // released meanwhile: try again
    if (row.request_hash !== hash) {
      throw new ApiError(
        422,
        'idempotency_key_reused',
        'this Idempotency-Key was used for a different request',
        [{ field: 'idempotency-key', issue: 'already used with another method, path or body' }],
      );
    }
    if (row.state === 'completed' && row.response_status !== null) {
      return {
        kind: 'replay',
        response: {
          status: row.response_status,
          headers: row.response_headers ?? {},
          body: typeof row.response_body === 'string' ? this.sealer.open(row.response_body) : null,
        },
        guard: { tenantId: row.replay_tenant_id, platformAdminOnly: row.replay_platform_admin_only },
      };
    }
    if (row.locked_seconds > 0) {
      throw new ApiError(
        409,
        'conflict',
        'a request with this Idempotency-Key is still in progress',
        [{ field: 'idempotency-key', issue: 'in progress' }],
        { 'Retry-After': String(row.locked_seconds) },
      );
    }
    // Its holder stopped without an answer: the event log tells whether it stored anything.
    const stored =
      row.attempt_request_id === null || row.attempt_after_position === null
        ? null
        : await lastEventOf(this.log, row.attempt_request_id, BigInt(row.attempt_after_position));
    if (stored) return this.answerLost(caller, key, hash, row, stored, attempt);
    const taken = await this.pool.query(
      repeatable({
        text: `update control_plane_idempotency_keys
                  set locked_until = now() + make_interval(secs => $4), created_at = now(), attempt_id = $5,
                      attempt_request_id = $6, attempt_after_position = $7
                where caller = $1 and key = $2 and state = 'in_progress' and locked_until <= now()
                  and attempt_id is not distinct from $3`,
        values: [
          caller,
          key,
          row.attempt_id,
          LOCK_SECONDS,
          attempt.id,
          attempt.requestId,
          attempt.afterPosition.toString(),
        ],
      }),
    );
    // Taken over by another request meanwhile (or this one, sent again): look again.
    return taken.rowCount === 1
      ? { kind: 'claimed', attempt: attempt.id }
      : this.claimAs(caller, key, hash, attempt);
  }

  /** The abandoned attempt was applied: its answer, lost, is now this 409 (and stays so for the key). */
  private async answerLost(
    caller: string,
    key: string,
    hash: string,
    row: KeyRow,
    stored: RecordedEvent,
    attempt: Attempt,
  ): Promise<IdempotencyClaim> {
    const response: StoredResponse = {
      status: 409,
      headers: { 'X-Event-Position': stored.position.toString() },
      body: errorBody(
        'idempotency_answer_lost',
        'the first request with this Idempotency-Key was applied, but its answer was lost (the database went away before it was stored); read the resource to see the result (X-Event-Position: its last event)',
        [{ field: 'idempotency-key', issue: 'applied; answer lost' }],
      ),
    };
    const guard: ReplayGuard = { tenantId: stored.metadata.tenant_id, platformAdminOnly: false };
    const updated = await this.pool.query(
      repeatable({
        text: `update control_plane_idempotency_keys
                  set state = 'completed', response_status = $4, response_headers = $5, response_body = $6,
                      replay_tenant_id = $7, replay_platform_admin_only = false
                where caller = $1 and key = $2 and state = 'in_progress' and attempt_id is not distinct from $3`,
        values: [
          caller,
          key,
          row.attempt_id,
          response.status,
          JSON.stringify(response.headers),
          JSON.stringify(this.sealer.seal(response.body)),
          guard.tenantId,
        ],
      }),
    );
    return updated.rowCount === 1
      ? { kind: 'replay', response, guard }
      : this.claimAs(caller, key, hash, attempt);
  }

  /**
   * Stores the answer. When PostgreSQL is gone by now, the answer is still given: the key stays in
   * progress, and a retry finds this attempt's events (409 idempotency_answer_lost, not a second run).
   */
  async complete(caller: string, key: string, response: StoredResponse, guard: ReplayGuard): Promise<void> {
    try {
      await this.pool.query(
        repeatable({
          text: `update control_plane_idempotency_keys
                    set state = 'completed', response_status = $3, response_headers = $4, response_body = $5,
                        replay_tenant_id = $6, replay_platform_admin_only = $7
                  where caller = $1 and key = $2`,
          values: [
            caller,
            key,
            response.status,
            JSON.stringify(response.headers),
            JSON.stringify(this.sealer.seal(response.body)),
            guard.tenantId,
            guard.platformAdminOnly,
          ],
        }),
      );
    } catch (error) {
      if (!(error instanceof StoreUnavailableError)) throw error;
    }
  }

  /**
   * After a failed command: the key is free again. Best effort — when PostgreSQL is gone, the key
   * stays in progress until its lock ends, and the next request finds that nothing was stored.
   */
  async release(caller: string, key: string, attempt: string): Promise<void> {
    await this.pool
      .query(
        repeatable({
          text: `delete from control_plane_idempotency_keys
                  where caller = $1 and key = $2 and state = 'in_progress' and attempt_id = $3`,
          values: [caller, key, attempt],
        }),
      )
      .catch(() => undefined);
  }
}

/** The last event an attempt appended (its correlation_id) after a position, if any. */
async function lastEventOf(
  log: Pick<EventStore, 'readAll'>,
  requestId: string,
  after: bigint,
): Promise<RecordedEvent | null> {
  let found: RecordedEvent | null = null;
  for (let from = after; ; ) {
    const batch = await log.readAll({ fromPosition: from, maxCount: SCAN_BATCH });
    for (const event of batch) if (event.metadata.correlation_id === requestId) found = event;
    const last = batch.at(-1);
    if (!last || batch.length < SCAN_BATCH) return found;
    from = last.position;
  }
}
