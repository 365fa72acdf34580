import { createHash } from 'node:crypto';
import type pg from 'pg';
import type { ReplayGuard } from '../commands/context.js';
import { ApiError } from './errors.js';
import { HEADER_FORMATS } from './header-formats.js';
import type { SealedJson } from './sealed-json.js';

/** A command response worth replaying. */
export interface StoredResponse {
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

export type IdempotencyClaim =
  | { kind: 'claimed' }
  | { kind: 'replay'; response: StoredResponse; guard: ReplayGuard };

const LOCK_SECONDS = 30;
const RETENTION_HOURS = 24;

export function requestHash(method: string, path: string, body: unknown): string {
  return createHash('sha256')
    .update(`${method} ${path}\n${JSON.stringify(body ?? null)}`)
    .digest('hex');
}

/**
 * Idempotency-Key records in PostgreSQL (migration 0010), following the IETF httpapi draft:
 * same key + same request → the first response again (nothing appended); same key + another request →
 * 422 idempotency_key_reused; same key while the first is still running → 409 conflict.
 * Only successful responses are stored: a failed command appended nothing and may be retried.
 * Each stored response keeps its replay guard (the tenant it is about): a replay re-checks the
 * caller's access first, since the answer may hold an API key's plaintext.
 */
export class IdempotencyStore {
  constructor(
    private readonly pool: pg.Pool,
    /** Response bodies are stored encrypted: an issued API key's plaintext is in them. */
    private readonly sealer: SealedJson,
  ) {}

  static validKey(key: string): string {
    if (!HEADER_FORMATS.idempotencyKey.test(key)) {
      throw new ApiError(400, 'validation_failed', 'Idempotency-Key must be 1–255 visible ASCII characters', [
        { field: 'idempotency-key', issue: 'invalid' },
      ]);
    }
    return key;
  }

  async claim(caller: string, key: string, hash: string): Promise<IdempotencyClaim> {
    const inserted = await this.pool.query(
      `insert into control_plane_idempotency_keys as k (caller, key, request_hash, state, locked_until)
       values ($1, $2, $3, 'in_progress', now() + make_interval(secs => $4))
       on conflict (caller, key) do update
         set request_hash = excluded.request_hash, state = 'in_progress', locked_until = excluded.locked_until,
             response_status = null, response_headers = null, response_body = null, created_at = now(),
             replay_tenant_id = null, replay_platform_admin_only = false
         where (k.state = 'in_progress' and k.locked_until < now())
            or k.created_at < now() - make_interval(hours => $5)
       returning 1`,
      [caller, key, hash, LOCK_SECONDS, RETENTION_HOURS],
    );
    if (inserted.rowCount === 1) return { kind: 'claimed' };
    const existing = await this.pool.query<{
      request_hash: string;
      state: string;
      response_status: number | null;
      response_headers: Record<string, string> | null;
      response_body: unknown;
      replay_tenant_id: string | null;
      replay_platform_admin_only: boolean;
    }>(
      `select request_hash, state, response_status, response_headers, response_body, replay_tenant_id,
              replay_platform_admin_only
         from control_plane_idempotency_keys where caller = $1 and key = $2`,
      [caller, key],
    );
    const row = existing.rows[0];
    if (!row) return this.claim(caller, key, hash); // released meanwhile: try again
    if (row.request_hash !== hash) {
      throw new ApiError(
        422,
        'idempotency_key_reused',
        'this Idempotency-Key was used for a different request',
        [{ field: 'idempotency-key', issue: 'already used with another method, path or body' }],
      );
    }
    if (row.state !== 'completed' || row.response_status === null) {
      throw new ApiError(
        409,
        'conflict',
        'a request with this Idempotency-Key is still in progress',
        [{ field: 'idempotency-key', issue: 'in progress' }],
        { 'Retry-After': '1' },
      );
    }
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

  async complete(caller: string, key: string, response: StoredResponse, guard: ReplayGuard): Promise<void> {
    await this.pool.query(
      `update control_plane_idempotency_keys
          set state = 'completed', response_status = $3, response_headers = $4, response_body = $5,
              replay_tenant_id = $6, replay_platform_admin_only = $7
        where caller = $1 and key = $2`,
      [
        caller,
        key,
        response.status,
        JSON.stringify(response.headers),
        JSON.stringify(this.sealer.seal(response.body)),
        guard.tenantId,
        guard.platformAdminOnly,
      ],
    );
  }

  async release(caller: string, key: string): Promise<void> {
    await this.pool.query(
      `delete from control_plane_idempotency_keys where caller = $1 and key = $2 and state = 'in_progress'`,
      [caller, key],
    );
  }
}
