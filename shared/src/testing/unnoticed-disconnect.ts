import { execFileSync } from 'node:child_process';
import path from 'node:path';

const PSQL = path.join(process.env['PG_BIN_DIR'] ?? '/usr/lib/postgresql/15/bin', 'psql');

/** The application_name of a test's own admin connection, which `endSessionsUnnoticed` leaves alone. */
export const TEST_ADMIN_APPLICATION = 've-test-admin';

/**
 * Ends every client session of the database (but the test's admin connection) and waits until they
 * are gone, while this process's event loop stands still (psql runs synchronously): the sessions' last
 * words wait unread in their sockets, so a pool in this process still holds those connections as idle —
 * as it does whenever a statement is sent before the pool got round to reading them. Returns how many.
 */
export function endSessionsUnnoticed(databaseUrl: string): number {
  const sql = `select count(*) from (select pg_terminate_backend(pid, 5000) from pg_stat_activity
    where datname = current_database() and pid <> pg_backend_pid() and backend_type = 'client backend'
      and application_name <> '${TEST_ADMIN_APPLICATION}') as ended`;
  return Number(
    execFileSync(PSQL, ['-X', '-A', '-t', '-d', databaseUrl, '-c', sql], { encoding: 'utf8' }).trim(),
  );
}
