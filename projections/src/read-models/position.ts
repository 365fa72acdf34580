import type pg from 'pg';
import { readCheckpoint } from '../runner/checkpoint.js';
import { READ_MODELS_PROJECTION } from './schema.js';

/**
 * The global event position the read models include: every event up to it is visible to queries.
 * Read-your-writes compares a command's position with it.
 */
export function readReadModelsPosition(db: Pick<pg.Pool, 'query'>): Promise<bigint> {
  return readCheckpoint(db, READ_MODELS_PROJECTION);
}
