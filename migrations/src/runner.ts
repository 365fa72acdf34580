import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

/**
 * SQL migrations: `migrations/sql/NNNN_name.up.sql` with an optional `NNNN_name.down.sql`.
 * Applied in version order, each in its own transaction, recorded in `schema_migrations`.
 * A session-level advisory lock serialises runners, so services starting together don't race.
 */

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** migrations/sql beside the sources (migrations/src/..), or beside the compiled migrator (dist/migrations/sql). */
export const DEFAULT_MIGRATIONS_DIR =
  [path.join(HERE, '..', 'sql'), path.join(HERE, 'sql')].find((dir) => existsSync(dir)) ??
  path.join(HERE, '..', 'sql');
const ADVISORY_LOCK_KEY = 7_301_945_120; // arbitrary, constant: "vantageedge migrations"

export interface Migration {
  version: number;
  name: string;
  up: string;
  down: string | undefined;
}

export interface MigrationResult {
  applied: Array<{ version: number; name: string }>;
}

const FILE_PATTERN = /^(\d{4,})_([a-z0-9_]+)\.(up|down)\.sql$/;

export async function loadMigrations(dir: string = DEFAULT_MIGRATIONS_DIR): Promise<Migration[]> {
  const byVersion = new Map<number, { name: string; up?: string; down?: string }>();
  for (const file of (await readdir(dir)).sort()) {
    const match = FILE_PATTERN.exec(file);
    if (!match) continue;
    const [, versionText, name, direction] = match as unknown as [string, string, string, 'up' | 'down'];
    const version = Number(versionText);
    const entry = byVersion.get(version) ?? { name };
    if (entry.name !== name) throw new Error(`migration ${version} has two names: ${entry.name} and ${name}`);
    entry[direction] = await readFile(path.join(dir, file), 'utf8');
    byVersion.set(version, entry);
  }
  return [...byVersion.entries()]
    .sort(([a], [b]) => a - b)
    .map(([version, entry]) => {
      if (entry.up === undefined) throw new Error(`migration ${version}_${entry.name} has no .up.sql`);
      return { version, name: entry.name, up: entry.up, down: entry.down };
    });
}

/** Connects, or fails with one line that says where it tried (never the password) and why. */
async function connect(connectionString: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString });
  try {
    await client.connect();
    return client;
  } catch (error) {
    let where = 'the database';
    try {
      const url = new URL(connectionString);
      where = `PostgreSQL at ${url.hostname}:${url.port || '5432'}${url.pathname}`;
    } catch {
      // keep the generic wording: the connection string itself is not printable
    }
    throw new Error(`cannot connect to ${where} (check DATABASE_URL): ${describeError(error)}`, {
      cause: error,
    });
  }
}

/** node's AggregateError (one per resolved address) has an empty message; use its parts. */
function describeError(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) {
    return [...new Set(error.errors.map(describeError))].join('; ');
  }
  if (error instanceof Error) return error.message || (error as NodeJS.ErrnoException).code || error.name;
  return String(error);
}

async function withMigrationLock<T>(client: pg.Client, fn: () => Promise<T>): Promise<T> {
  await client.query('select pg_advisory_lock($1)', [ADVISORY_LOCK_KEY]);
  try {
    await client.query(`create table if not exists schema_migrations (
      version bigint primary key,
      name text not null,
      applied_at timestamptz not null default now()
    )`);
    return await fn();
  } finally {
    await client.query('select pg_advisory_unlock($1)', [ADVISORY_LOCK_KEY]);
  }
}

async function appliedVersions(client: pg.Client): Promise<Set<number>> {
  const { rows } = await client.query<{ version: string }>('select version from schema_migrations');
  return new Set(rows.map((row) => Number(row.version)));
}

/** A migration's SQL failed; its transaction was rolled back and nothing of it remains. */
export class MigrationError extends Error {
  constructor(
    readonly migration: { version: number; name: string },
    readonly direction: 'up' | 'down',
    cause: unknown,
  ) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(
      `migration ${formatVersion(migration.version)}_${migration.name} (${direction}) failed: ${reason}`,
      {
        cause,
      },
    );
    this.name = 'MigrationError';
  }
}

function formatVersion(version: number): string {
  return String(version).padStart(4, '0');
}

async function inTransaction(
  client: pg.Client,
  migration: { version: number; name: string },
  direction: 'up' | 'down',
  fn: () => Promise<void>,
): Promise<void> {
  await client.query('begin');
  try {
    await fn();
    await client.query('commit');
  } catch (error) {
    await client.query('rollback');
    throw new MigrationError(migration, direction, error);
  }
}

/** Applies every pending migration (up to `target` if given). Safe to run again: applies nothing. */
export async function migrateUp(
  connectionString: string,
  { dir = DEFAULT_MIGRATIONS_DIR, target }: { dir?: string; target?: number } = {},
): Promise<MigrationResult> {
  const migrations = await loadMigrations(dir);
  const client = await connect(connectionString);
  try {
    return await withMigrationLock(client, async () => {
      const done = await appliedVersions(client);
      const applied: MigrationResult['applied'] = [];
      for (const migration of migrations) {
        if (done.has(migration.version) || (target !== undefined && migration.version > target)) continue;
        await inTransaction(client, migration, 'up', async () => {
          await client.query(migration.up);
          await client.query('insert into schema_migrations (version, name) values ($1, $2)', [
            migration.version,
            migration.name,
          ]);
        });
        applied.push({ version: migration.version, name: migration.name });
      }
      return { applied };
    });
  } finally {
    await client.end();
  }
}

/** Rolls back the newest `steps` applied migrations using their .down.sql files. */
export async function migrateDown(
  connectionString: string,
  { dir = DEFAULT_MIGRATIONS_DIR, steps = 1 }: { dir?: string; steps?: number } = {},
): Promise<MigrationResult> {
  const migrations = new Map((await loadMigrations(dir)).map((m) => [m.version, m]));
  const client = await connect(connectionString);
  try {
    return await withMigrationLock(client, async () => {
      const newestFirst = [...(await appliedVersions(client))].sort((a, b) => b - a).slice(0, steps);
      // Check every step before undoing any, so a missing .down.sql changes nothing.
      const plan = newestFirst.map((version) => {
        const migration = migrations.get(version);
        if (!migration?.down) {
          throw new Error(
            `migration ${formatVersion(version)}${migration ? `_${migration.name}` : ''} cannot be rolled back: no .down.sql file`,
          );
        }
        return { ...migration, down: migration.down };
      });
      const rolledBack: MigrationResult['applied'] = [];
      for (const migration of plan) {
        await inTransaction(client, migration, 'down', async () => {
          await client.query(migration.down);
          await client.query('delete from schema_migrations where version = $1', [migration.version]);
        });
        rolledBack.push({ version: migration.version, name: migration.name });
      }
      return { applied: rolledBack };
    });
  } finally {
    await client.end();
  }
}
