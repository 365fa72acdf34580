import pg from 'pg';

/** The checkpoint row of the read-model projector in `projection_checkpoints`. */
export const READ_MODELS_PROJECTION = 'read_models';

/** The live schema the queries read. A replay builds `read_models_rebuild_<n>` and renames it to this. */
export const READ_MODELS_SCHEMA = 'read_models';

/** Every table the projector maintains, all folded from the log alone (so all rebuilt by a replay). */
export const READ_MODEL_TABLES = [
  'tenants',
  'users',
  'origins',
  'routes',
  'api_keys',
  'certificates',
  'custom_domains',
  'audit_log',
] as const;
export type ReadModelTable = (typeof READ_MODEL_TABLES)[number];

/** The values of `audit_log.resource_type` (a filter of the audit-log query). */
export const RESOURCE_TYPES = ['tenant', 'user', 'origin', 'route', 'api_key', 'certificate'] as const;
export type ResourceType = (typeof RESOURCE_TYPES)[number];

/** `"schema"."table"`, quoted: schema names come from code, never from requests, but quote anyway. */
export function qualified(schema: string, table: ReadModelTable): string {
  return `${pg.escapeIdentifier(schema)}.${pg.escapeIdentifier(table)}`;
}
