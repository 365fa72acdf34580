import pg from 'pg';
import { qualified, READ_MODEL_TABLES, READ_MODELS_SCHEMA } from './schema.js';

/**
 * A replay builds the read models into a fresh schema shaped like the live one. The shape is copied
 * from the live tables (the migrations stay the one definition): columns, defaults and checks with
 * `like ... including all excluding indexes excluding statistics`, then the primary keys (the projector
 * upserts on them) and the extended statistics, and the secondary indexes only after the data is in,
 * indexes and statistics under the same names as the live ones, so a later migration (or a down
 * migration) finds them after a swap: copied by `like`, statistics got names of PostgreSQL's making.
 */

type Queryable = Pick<pg.Pool | pg.PoolClient, 'query'>;

export function newRebuildSchemaName(): string {
  return `read_models_rebuild_${Date.now()}`;
}

export async function createRebuildSchema(db: Queryable, schema: string): Promise<void> {
  await db.query(`create schema ${pg.escapeIdentifier(schema)}`);
  for (const table of READ_MODEL_TABLES) {
    await db.query(
      `create table ${qualified(schema, table)} (like ${qualified(READ_MODELS_SCHEMA, table)} including all excluding indexes excluding statistics)`,
    );
  }
  for (const { table, name, definition } of await constraintsOf(db, 'p')) {
    await db.query(
      `alter table ${qualified(schema, table)} add constraint ${pg.escapeIdentifier(name)} ${definition}`,
    );
  }
  await createStatistics(db, schema);
}

/** The live schema's extended statistics objects, on the rebuilt tables, under the live names. */
async function createStatistics(db: Queryable, schema: string): Promise<void> {
  const { rows } = await db.query<{ name: string; table: string; definition: string }>(
    `select quote_ident(s.stxname) as name, quote_ident(t.relname) as table,
            pg_get_statisticsobjdef(s.oid) as definition
       from pg_statistic_ext s
       join pg_namespace n on n.oid = s.stxnamespace
       join pg_class t on t.oid = s.stxrelid
      where n.nspname = $1
      order by s.oid`,
    [READ_MODELS_SCHEMA],
  );
  const rebuilt = pg.escapeIdentifier(schema);
  for (const { name, table, definition } of rows) {
    const head = `CREATE STATISTICS ${READ_MODELS_SCHEMA}.${name} `;
    const tail = ` FROM ${READ_MODELS_SCHEMA}.${table}`;
    if (!definition.startsWith(head) || !definition.endsWith(tail))
      throw new Error(`unexpected statistics definition: ${definition}`);
    const body = definition.slice(head.length, definition.length - tail.length);
    await db.query(`CREATE STATISTICS ${rebuilt}.${name} ${body} FROM ${rebuilt}.${table}`);
  }
}

/** Adds the live schema's secondary indexes (everything but primary keys) to the rebuilt tables. */
export async function createSecondaryIndexes(db: Queryable, schema: string): Promise<void> {
  const { rows } = await db.query<{ definition: string }>(
    `select pg_get_indexdef(i.indexrelid) as definition
       from pg_index i
       join pg_class t on t.oid = i.indrelid
       join pg_namespace n on n.oid = t.relnamespace
      where n.nspname = $1 and not i.indisprimary
      order by t.relname, i.indexrelid`,
    [READ_MODELS_SCHEMA],
  );
  const live = ` ON ${READ_MODELS_SCHEMA}.`;
  for (const { definition } of rows) {
    if (!definition.includes(live)) throw new Error(`unexpected index definition: ${definition}`);
    await db.query(definition.replace(live, ` ON ${pg.escapeIdentifier(schema)}.`));
  }
}

async function constraintsOf(
  db: Queryable,
  kind: 'p',
): Promise<Array<{ table: (typeof READ_MODEL_TABLES)[number]; name: string; definition: string }>> {
  const { rows } = await db.query<{ table: string; name: string; definition: string }>(
    `select t.relname as table, c.conname as name, pg_get_constraintdef(c.oid) as definition
       from pg_constraint c
       join pg_class t on t.oid = c.conrelid
       join pg_namespace n on n.oid = t.relnamespace
      where n.nspname = $1 and c.contype = $2`,
    [READ_MODELS_SCHEMA, kind],
  );
  return rows.map((row) => {
    const table = READ_MODEL_TABLES.find((name) => name === row.table);
    if (!table)
      throw new Error(`table ${row.table} in schema ${READ_MODELS_SCHEMA} is not a known read model`);
    return { table, name: row.name, definition: row.definition };
  });
}

export async function dropSchema(db: Queryable, schema: string): Promise<void> {
  await db.query(`drop schema if exists ${pg.escapeIdentifier(schema)} cascade`);
}
