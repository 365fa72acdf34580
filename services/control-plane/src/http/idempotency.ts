import { createHash, randomUUID } from 'node:crypto';
import type { EventStore, RecordedEvent } from '@vantageedge/shared/event-store/port';
import { repeatable, StoreUnavailableError } from '@vantageedge/shared/postgres/lost-connections';
import type pg from 'pg';
import type { ReplayGuard } from '../commands/context.js';
import { ApiError, errorBody } from './errors.js';
import { HEADER_FORMATS } from './header-formats.js';
import { SealedJson } from './sealed-json.js';

/** A command response worth replaying. */
export interface StoredResponse {
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

export type IdempotencyClaim =
  /**
   * `attempt`: this request's token, made here: the command's events carry it
   * (`metadata.idempotency_attempt`, see CommandContext.idempotencyAttempt); `complete` and `release`
   * name it.
   */
  { kind: 'claimed'; attempt: string } | { kind: 'replay'; response: StoredResponse; guard: ReplayGuard };

/**
 * Runs before a stored answer is read and opened for a replay, given its guard and the bytes of its JSON:
 * it may refuse the replay (throw) — the caller's access, the tenant's read budget — so that a refused
 * replay costs no read of a large answer.
 */
export type BeforeReplay = (guard: ReplayGuard, answerBytes: number) => Promise<void>;

const LOCK_SECONDS = 30;
/** How many times per lock a running request renews it: one renewal may be missed, or two. */
const RENEWALS_PER_LOCK = 3;
const RETENTION_HOURS = 24;
/** Records past their retention deleted per claim: more than the one a claim adds, so they never pile up. */
const SWEEP_BATCH = 100;
/** Events read per batch while looking for an earlier attempt's events. */
const SCAN_BATCH = 500;
/**
 * SQLSTATE of an append under an attempt that no longer holds its key (migration 0205's fence): a later
 * request with the key took it over after this one's lock ran out.
 */
const SUPERSEDED = 'VE423';

/** A request about to hold a key (migration 0205). */
interface Attempt {
  /** A token of this request alone, made by the server: the events the command appends carry it. */
  id: string;
  /** The event-store position before it ran. */
  afterPosition: bigint;
  /** How long it holds the key before a later request with the key may take it over. */
  lockSeconds: number;
}

interface KeyRow {
  request_hash: string;
  state: string;
  /** Seconds until the holder's lock ends (0: it ended). */
  locked_seconds: number;
  response_status: number | null;
  response_headers: Record<string, string> | null;
  /** The length of the stored (sealed) answer; the answer itself is read only once a replay is let through. */
  sealed_body_length: number | null;
  replay_tenant_id: string | null;
  replay_platform_admin_only: boolean;
  attempt_id: string | null;
}

/** A key just claimed: the attempts that held it before (null or empty: none), and since when. */
interface ClaimedRow {
  earlier: string[] | null;
  after_position: string | null;
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
 * A running request renews its lock (`hold`), so a retry while it runs, however long, is told to come
 * back (409 + Retry-After). A key whose holder stopped without an answer — its process died, or
 * PostgreSQL went away while its events were being committed (503 store_unavailable, outcome unknown) —
 * or could not renew its lock for a whole lock (PostgreSQL out of reach, the process stalled) stays in
 * progress until its lock ends; then the next request with the key takes it over, and only
 * then looks in the event log for events of the attempts that held it before (their server-made
 * attempt ids and the caller, never the client's X-Request-Id): none → it runs; events → it answers 409
 * idempotency_answer_lost (applied, answer lost) and never runs it twice. Taking over first is what
 * makes the look safe: in PostgreSQL an event is stored only while its attempt holds the key
 * (migration 0205), so an earlier attempt's append still on its way — on a session whose client is
 * gone — is refused from then on, or commits before the takeover does and is found.
 * Every statement here is `repeatable`: sent again on a new connection after a lost one.
 */
export class IdempotencyStore {
  constructor(
    private readonly pool: pg.Pool,
    /** Response bodies are stored encrypted: an issued API key's plaintext is in them. */
    private readonly sealer: SealedJson,
    /** The event log an earlier attempt's events are looked for in. */
    private readonly log: Pick<EventStore, 'headPosition' | 'readAll'>,
    /** How long a request holds its key unrenewed (tests shorten it). */
    private readonly lockSeconds = LOCK_SECONDS,
  ) {}

  static validKey(key: string): string {
    if (!HEADER_FORMATS.idempotencyKey.test(key)) {
      throw new ApiError(400, 'validation_failed', 'Idempotency-Key must be 1–255 visible ASCII characters', [
        { field: 'idempotency-key', issue: 'invalid' },
      ]);
    }
    return key;
  }

  /**
   * `waitsAfterAppendMs`: how long the request may wait once its events are stored, before its answer
   * is (`?wait_for_rollout=`). The key's lock covers it: a retry during that wait is told to come back
   * (409 + Retry-After), rather than taking the key over and finding the events without their answer.
   */
  async claim(
    caller: string,
    key: string,
    hash: string,
    beforeReplay: BeforeReplay = async () => {},
    waitsAfterAppendMs = 0,
  ): Promise<IdempotencyClaim> {
    await this.sweepExpired();
    const attempt = {
      id: randomUUID(),
      afterPosition: await this.log.headPosition(),
      lockSeconds: this.lockSeconds + Math.ceil(waitsAfterAppendMs / 1000),
    };
    return this.claimAs(caller, key, hash, attempt, beforeReplay);
  }

  /**
   * A record past its retention is replayed to no one, but only its caller reusing its key would
   * overwrite it: each key would stay for good, a sealed API key plaintext too. Every claim deletes
   * some of them, whoever's they are. Best effort: when this fails, the claim's own statements say why.
   */
  private async sweepExpired(): Promise<void> {
    await this.pool
      .query(
        repeatable({
          text: `delete from control_plane_idempotency_keys
                  where (caller, key) in (select caller, key from control_plane_idempotency_keys
                                           where created_at < now() - make_interval(hours => $1)
                                           limit $2 for update skip locked)`,
          values: [RETENTION_HOURS, SWEEP_BATCH],
        }),
      )
      .catch(() => undefined);
  }

  private async claimAs(
    caller: string,
    key: string,
    hash: string,
    attempt: Attempt,
    beforeReplay: BeforeReplay,
  ): Promise<IdempotencyClaim> {
    // A new key, one past its retention, or this attempt's own claim sent again (which keeps the
    // attempts before it, when it took the key over).
    const inserted = await this.pool.query<ClaimedRow>(
      repeatable({
        text: `insert into control_plane_idempotency_keys as k (caller, key, request_hash, state, locked_until,
                 attempt_id, attempts, attempt_after_position)
               values ($1, $2, $3, 'in_progress', now() + make_interval(secs => $4), $6, array[$6], $7)
               on conflict (caller, key) do update
                 set request_hash = excluded.request_hash, state = 'in_progress', locked_until = excluded.locked_until,
                     response_status = null, response_headers = null, response_body = null, created_at = now(),
                     replay_tenant_id = null, replay_platform_admin_only = false, attempt_id = excluded.attempt_id,
                     attempts = case when k.attempt_id = excluded.attempt_id then k.attempts else excluded.attempts end,
                     attempt_after_position = case when k.attempt_id = excluded.attempt_id
                                                   then k.attempt_after_position
                                                   else excluded.attempt_after_position end
                 where (k.state = 'in_progress' and k.attempt_id = excluded.attempt_id)
                    or k.created_at < now() - make_interval(hours => $5)
               returning array_remove(attempts, $6) as earlier, attempt_after_position::text as after_position`,
        values: [
          caller,
          key,
          hash,
          attempt.lockSeconds,
          RETENTION_HOURS,
          attempt.id,
          attempt.afterPosition.toString(),
        ],
      }),
    );
    const claimed = inserted.rows[0];
    if (claimed) return this.settle(caller, key, hash, attempt, claimed, beforeReplay);
    const existing = await this.pool.query<KeyRow>(
      `select request_hash, state, response_status, response_headers, replay_tenant_id,
              replay_platform_admin_only, attempt_id, length(response_body #>> '{}') as sealed_body_length,
              greatest(0, ceil(extract(epoch from locked_until - now())))::int as locked_seconds
         from control_plane_idempotency_keys where caller = $1 and key = $2`,
      [caller, key],
    );
    const row = existing.rows[0];
    if (!row) return this.claimAs(caller, key, hash, attempt, beforeReplay); // released meanwhile: try again
    if (row.request_hash !== hash) {
      throw new ApiError(
        422,
        'idempotency_key_reused',
        'this Idempotency-Key was used for a different request',
        [{ field: 'idempotency-key', issue: 'already used with another method, path or body' }],
      );
    }
    if (row.state === 'completed' && row.response_status !== null) {
      const guard = { tenantId: row.replay_tenant_id, platformAdminOnly: row.replay_platform_admin_only };
      await beforeReplay(guard, SealedJson.openedBytes(row.sealed_body_length ?? 0));
      const stored = await this.pool.query<{ response_body: unknown }>(
        `select response_body from control_plane_idempotency_keys
          where caller = $1 and key = $2 and state = 'completed' and request_hash = $3`,
        [caller, key, hash],
      );
      const found = stored.rows[0];
      // Swept or taken over since (its retention ended): look again.
      if (!found) return this.claimAs(caller, key, hash, attempt, beforeReplay);
      const body = found.response_body;
      return {
        kind: 'replay',
        response: {
          status: row.response_status,
          headers: row.response_headers ?? {},
          body: typeof body === 'string' ? this.openStoredBody(body) : null,
        },
        guard,
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
    // Its holder stopped without an answer, or stopped renewing its lock: take the key over first (an
    // append of the holder still on its way is refused from then on, or commits before this update
    // does — it holds the row), then look for what the earlier attempts stored.
    const taken = await this.pool.query<ClaimedRow>(
      repeatable({
        text: `update control_plane_idempotency_keys
                  set locked_until = now() + make_interval(secs => $4), created_at = now(), attempt_id = $5,
                      attempts = coalesce(attempts, '{}') || $5::text,
                      attempt_after_position = coalesce(attempt_after_position, $6)
                where caller = $1 and key = $2 and state = 'in_progress' and locked_until <= now()
                  and attempt_id is not distinct from $3
                returning array_remove(attempts, $5) as earlier, attempt_after_position::text as after_position`,
        values: [
          caller,
          key,
          row.attempt_id,
          attempt.lockSeconds,
          attempt.id,
          attempt.afterPosition.toString(),
        ],
      }),
    );
    const took = taken.rows[0];
    // Taken over by another request meanwhile (or this one, sent again): look again.
    return took
      ? this.settle(caller, key, hash, attempt, took, beforeReplay)
      : this.claimAs(caller, key, hash, attempt, beforeReplay);
  }

  /** The key is this attempt's: it runs, unless an earlier attempt of the key stored its events. */
  private async settle(
    caller: string,
    key: string,
    hash: string,
    attempt: Attempt,
    claimed: ClaimedRow,
    beforeReplay: BeforeReplay,
  ): Promise<IdempotencyClaim> {
    const earlier = new Set(claimed.earlier ?? []);
    if (earlier.size === 0 || claimed.after_position === null)
      return { kind: 'claimed', attempt: attempt.id };
    const after = BigInt(claimed.after_position);
    const look = () => lastEventOf(this.log, caller, earlier, after);
    const stored = await look();
    return stored
      ? this.answerLost(caller, key, hash, attempt, stored, beforeReplay, look)
      : { kind: 'claimed', attempt: attempt.id };
  }

  /** An earlier attempt was applied: its answer, lost, is now this 409 (and stays so for the key). */
  private async answerLost(
    caller: string,
    key: string,
    hash: string,
    attempt: Attempt,
    stored: RecordedEvent,
    beforeReplay: BeforeReplay,
    lookAgain: () => Promise<RecordedEvent | null>,
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
                where caller = $1 and key = $2 and state = 'in_progress' and attempt_id = $3`,
        values: [
          caller,
          key,
          attempt.id,
          response.status,
          JSON.stringify(response.headers),
          JSON.stringify(this.sealer.seal(response.body)),
          guard.tenantId,
        ],
      }),
    );
    if (updated.rowCount !== 1) return this.claimAs(caller, key, hash, attempt, beforeReplay);
    // The earlier attempt may still have been running, and undone its events since they were looked for
    // (a rotation refused once its key was taken over). It looks at the key once its undo is stored
    // (`reopenIfUndone`), this looks again once its answer is: one of the two sees the other.
    if ((await lookAgain()) === null) {
      await this.pool.query(
        repeatable({
          text: `delete from control_plane_idempotency_keys
                  where caller = $1 and key = $2 and state = 'completed' and attempt_id = $3`,
          values: [caller, key, attempt.id],
        }),
      );
      return this.claimAs(caller, key, hash, attempt, beforeReplay);
    }
    await beforeReplay(guard, Buffer.byteLength(JSON.stringify(response.body)));
    return { kind: 'replay', response, guard };
  }

  /** A stored answer sealed under an earlier API_KEY_PEPPER no longer opens: it is lost, not a 500. */
  private openStoredBody(sealed: string): unknown {
    try {
      return this.sealer.open(sealed);
    } catch {
      throw new ApiError(
        409,
        'idempotency_answer_lost',
        'the first request with this Idempotency-Key was applied, but its stored answer can no longer be read (API_KEY_PEPPER changed since); read the resource to see the result',
        [{ field: 'idempotency-key', issue: 'applied; answer unreadable' }],
      );
    }
  }

  /**
   * Keeps the key the attempt's while its request runs, however long (a config apply of many steps, one
   * that first waited for its tenant's lock, a slow store): every third of the lock, its end is moved to
   * a whole lock from now (never earlier than the claim set it). Only a request that stopped renewing —
   * its process died or stalled, or PostgreSQL stayed out of reach for a whole lock — is taken over. The
   * renewal names the attempt, so once the key is answered, released or taken over it changes nothing,
   * and the renewals end there. `stop` when the request ends, whichever way.
   */
  hold(caller: string, key: string, attempt: string): { stop(): void } {
    return startRenewals(
      () => this.renew(caller, key, attempt),
      (this.lockSeconds * 1000) / RENEWALS_PER_LOCK,
    );
  }

  /** False once the attempt no longer holds the key (nothing more to renew). */
  private async renew(caller: string, key: string, attempt: string): Promise<boolean> {
    const renewed = await this.pool.query(
      repeatable({
        text: `update control_plane_idempotency_keys
                  set locked_until = greatest(locked_until, now() + make_interval(secs => $4))
                where caller = $1 and key = $2 and state = 'in_progress' and attempt_id = $3`,
        values: [caller, key, attempt, this.lockSeconds],
      }),
    );
    return renewed.rowCount === 1;
  }

  /**
   * Stores the answer of the attempt that holds the key (one taken over meanwhile stores nothing). When
   * PostgreSQL is gone by now, the answer is still given: the key stays in progress, and a retry finds
   * this attempt's events (409 idempotency_answer_lost, not a second run).
   */
  async complete(
    caller: string,
    key: string,
    attempt: string,
    response: StoredResponse,
    guard: ReplayGuard,
  ): Promise<void> {
    try {
      await this.pool.query(
        repeatable({
          text: `update control_plane_idempotency_keys
                    set state = 'completed', response_status = $3, response_headers = $4, response_body = $5,
                        replay_tenant_id = $6, replay_platform_admin_only = $7
                  where caller = $1 and key = $2 and state = 'in_progress' and attempt_id = $8`,
          values: [
            caller,
            key,
            response.status,
            JSON.stringify(response.headers),
            JSON.stringify(this.sealer.seal(response.body)),
            guard.tenantId,
            guard.platformAdminOnly,
            attempt,
          ],
        }),
      );
    } catch (error) {
      if (!(error instanceof StoreUnavailableError)) throw error;
    }
  }

  /**
   * After the attempt was taken over and its command undid what it had stored (its undo's events name
   * it, `idempotency_undoes`): a retry may have found its events before the undo and answered 409
   * idempotency_answer_lost ("applied") for the key. Nothing is applied now, so that answer is dropped
   * and the next request with the key runs the command. Best effort: on failure the key keeps its answer.
   */
  async reopenIfUndone(caller: string, key: string, attempt: string): Promise<void> {
    try {
      // A stored 409 is only ever an answer lost: commands' own answers are stored only on success.
      const lost = await this.pool.query<{ attempts: string[]; after_position: string | null }>(
        `select attempts, attempt_after_position::text as after_position from control_plane_idempotency_keys
          where caller = $1 and key = $2 and state = 'completed' and response_status = 409
            and $3 = any(attempts)`,
        [caller, key, attempt],
      );
      const row = lost.rows[0];
      if (!row || row.after_position === null) return;
      const attempts = new Set(row.attempts);
      if ((await lastEventOf(this.log, caller, attempts, BigInt(row.after_position))) !== null) return;
      await this.pool.query(
        repeatable({
          text: `delete from control_plane_idempotency_keys
                  where caller = $1 and key = $2 and state = 'completed' and response_status = 409
                    and attempts = $3::text[]`,
          values: [caller, key, row.attempts],
        }),
      );
    } catch {
      // The key's answer stays "applied; answer lost": the resource, read, shows what is.
    }
  }

  /**
   * After a failed command: the key is free again. Best effort — when PostgreSQL is gone, the key
   * stays in progress until its lock ends, and the next request finds that nothing was stored.
   * False when the attempt no longer held the key (a later request took it over) or PostgreSQL failed.
   */
  async release(caller: string, key: string, attempt: string): Promise<boolean> {
    const released = await this.pool
      .query(
        repeatable({
          text: `delete from control_plane_idempotency_keys
                  where caller = $1 and key = $2 and state = 'in_progress' and attempt_id = $3`,
          values: [caller, key, attempt],
        }),
      )
      .catch(() => null);
    return released?.rowCount === 1;
  }
}

/**
 * A command's append refused because its attempt no longer holds its key (migration 0205): a later
 * request with the key took it over after this one's lock ran out → 409 conflict; null for any other error.
 */
export function supersededAttempt(error: unknown): ApiError | null {
  if ((error as { code?: unknown } | null)?.code !== SUPERSEDED) return null;
  return new ApiError(
    409,
    'conflict',
    `this request could not renew its Idempotency-Key lock for ${LOCK_SECONDS} s (PostgreSQL out of reach, or the control plane stalled) and a later request with the key took the key over; from then on this request could store nothing — send it again with the same key to get the outcome`,
    [{ field: 'idempotency-key', issue: 'taken over by a later request' }],
    // The key is the later request's now: sent again, this one gets its answer (409 while it runs).
    { 'Retry-After': '1' },
  );
}

/**
 * Runs `renew` every `everyMs` until it answers false or `stop` is called. A failed renewal (PostgreSQL
 * briefly away) is tried again at the next turn. The timer never keeps the process alive.
 */
function startRenewals(renew: () => Promise<boolean>, everyMs: number): { stop(): void } {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const next = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      renew().then(
        (held) => (held ? next() : undefined),
        () => next(),
      );
    }, everyMs);
    timer.unref();
  };
  next();
  return {
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

/**
 * The last event the caller appended under one of `attempts` after a position, if any, leaving out
 * the attempts whose events the caller's later events undid (`idempotency_undoes`).
 */
async function lastEventOf(
  log: Pick<EventStore, 'readAll'>,
  caller: string,
  attempts: ReadonlySet<string>,
  after: bigint,
): Promise<RecordedEvent | null> {
  const lastOf = new Map<string, RecordedEvent>();
  const undone = new Set<string>();
  for (let from = after; ; ) {
    const batch = await log.readAll({ fromPosition: from, maxCount: SCAN_BATCH });
    for (const event of batch) {
      if (event.metadata.actor !== caller) continue;
      const attempt = event.metadata.idempotency_attempt;
      if (attempt !== undefined && attempts.has(attempt)) lastOf.set(attempt, event);
      const undoes = event.metadata.idempotency_undoes;
      if (undoes !== undefined && attempts.has(undoes)) undone.add(undoes);
    }
    const last = batch.at(-1);
    if (!last || batch.length < SCAN_BATCH) break;
    from = last.position;
  }
  let found: RecordedEvent | null = null;
  for (const [attempt, event] of lastOf) {
    if (!undone.has(attempt) && (found === null || event.position > found.position)) found = event;
  }
  return found;
}
