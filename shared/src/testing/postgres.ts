import { migrateUp } from '@vantageedge/migrations/runner';
import pg from 'pg';
import { TEST_INFRA, uniqueSuffix } from './infrastructure.js';

export interface TestDatabase {
  /** Connection string of the fresh database. */
  url: string;
  name: string;
  pool: pg.Pool;
  /** Closes the pool and drops the database. */
  drop(): Promise<void>;
}

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

/**
 * A fresh database on the local PostgreSQL (or on `serverUrl`, e.g. a private server a fault test
 * stops and starts) for one test file, migrated unless told otherwise, so test files can run in
 * parallel without seeing each other's rows.
 */
export async function createTestDatabase({
  migrate = true,
  serverUrl = TEST_INFRA.databaseUrl,
}: {
  migrate?: boolean;
  serverUrl?: string;
} = {}): Promise<TestDatabase> {
  const name = `ve_test_${uniqueSuffix()}`;
  const admin = new pg.Client({ connectionString: withDatabase(serverUrl, 'postgres') });
  await admin.connect();
  try {
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  const url = withDatabase(serverUrl, name);
  if (migrate) await migrateUp(url);
  const pool = new pg.Pool({ connectionString: url, max: 10 });
  // `drop` force-terminates sessions that are still closing; an idle client's error must not end the run.
  pool.on('error', () => {});
  return {
    url,
    name,
    pool,
    async drop() {
      await pool.end();
      const client = new pg.Client({ connectionString: withDatabase(serverUrl, 'postgres') });
      await client.connect();
      try {
        // Sessions of pools just ended may still be closing: let them go first. Terminated by the
        // drop instead, a client that already ended (and lost its listeners) gets the server's
        // "terminating connection" as an uncaught error.
        for (let waited = 0; waited < 1_000; waited += 50) {
          const { rows } = await client.query<{ sessions: number }>(
            'select count(*)::int as sessions from pg_stat_activity where datname = $1',
            [name],
          );
          if (rows[0]?.sessions === 0) break;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        await client.query(`drop database if exists ${name} with (force)`);
      } finally {
        await client.end();
      }
    },
  };
}
