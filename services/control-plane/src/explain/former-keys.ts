import { readReadModelsPosition } from '@vantageedge/projections/read-models/position';
import { qualified, READ_MODELS_SCHEMA } from '@vantageedge/projections/read-models/schema';
import type pg from 'pg';

/**
 * A presented API key that is not in the explained snapshot: was it issued to the tenant by then
 * (revoked, rotated out, or expired and dropped from the snapshot) or never? The tenant's fold keeps
 * only its live keys (a tenant may revoke, or issue already expired, any number of keys: TENANT_MAX_API_KEYS
 * counts live ones), so the answer is the read models' row of that hash (api_keys_key_hash index),
 * issued at or before the explained position and to this tenant only.
 */

export interface FormerKey {
  api_key_id: string;
  name: string;
}

export interface FormerKeyAnswer {
  /** The key of that hash issued to the tenant at or before the position; none when there is none. */
  key: FormerKey | undefined;
  /**
   * With none: the read models' position, when they do not yet include the explained one (a key issued
   * and revoked after it is not in them yet).
   */
  readModelsAt?: bigint;
}

export type FormerKeyLookup = (keyHash: string) => Promise<FormerKeyAnswer>;

export function formerKeysOf(pool: pg.Pool, tenantId: string, position: bigint): FormerKeyLookup {
  return async (keyHash) => {
    const { rows } = await pool.query<{ id: string; name: string }>(
      `select id, name from ${qualified(READ_MODELS_SCHEMA, 'api_keys')}
        where key_hash = $1 and tenant_id = $2 and created_position <= $3
        order by created_position desc limit 1`,
      [keyHash, tenantId, position.toString()],
    );
    const row = rows[0];
    if (row !== undefined) return { key: { api_key_id: row.id, name: row.name } };
    const readModelsAt = await readReadModelsPosition(pool);
    return readModelsAt < position ? { key: undefined, readModelsAt } : { key: undefined };
  };
}
