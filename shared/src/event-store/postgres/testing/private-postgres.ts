import { execFile } from 'node:child_process';
import { chmod, chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../../../testing/free-ports.js';

const run = promisify(execFile);
const BIN = process.env['PG_BIN_DIR'] ?? '/usr/lib/postgresql/15/bin';
const USER = 'vantageedge';
const PASSWORD = 'vantageedge';

/**
 * A throwaway PostgreSQL server for tests that must stop or restart the server (the shared one must
 * never be touched). Runs as the `postgres` OS user like infra/postgres.sh, on a free port, with its
 * data in a temporary folder that `postgres` can reach.
 */
export interface PrivatePostgres {
  url: string;
  port: number;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Stops and deletes the data folder. */
  destroy(): Promise<void>;
}

/** A server certificate (PEM) and its key: the server then also accepts TLS (`ssl=on`). */
export interface PrivatePostgresTls {
  certificatePem: string;
  privateKeyPem: string;
}

export async function createPrivatePostgres({
  tls,
}: {
  tls?: PrivatePostgresTls | undefined;
} = {}): Promise<PrivatePostgres> {
  const home = await mkdtemp(path.join(tmpdir(), 've-private-pg-'));
  await chmod(home, 0o755);
  const { uid, gid } = await postgresUser();
  await chown(home, uid, gid);
  let sslOptions = '';
  if (tls) {
    for (const [name, pem] of [
      ['server.crt', tls.certificatePem],
      ['server.key', tls.privateKeyPem],
    ] as const) {
      await writeFile(path.join(home, name), pem, { mode: 0o600 });
      await chown(path.join(home, name), uid, gid);
    }
    sslOptions = ` -c ssl=on -c ssl_cert_file=${path.join(home, 'server.crt')} -c ssl_key_file=${path.join(home, 'server.key')}`;
  }
  const data = path.join(home, 'data');
  const pwfile = path.join(home, 'pwfile');
  await writeFile(pwfile, `${PASSWORD}\n`, { mode: 0o600 });
  await chown(pwfile, uid, gid);
  await asPostgres(`${BIN}/initdb`, [
    '-D',
    data,
    '-U',
    USER,
    `--pwfile=${pwfile}`,
    '--auth=scram-sha-256',
    '--encoding=UTF8',
    '--no-sync',
  ]);
  const port = await freePort();
  const ctl = (args: string[]) => asPostgres(`${BIN}/pg_ctl`, ['-D', data, ...args]);
  const server: PrivatePostgres = {
    url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`,
    port,
    async start() {
      await ctl([
        '-l',
        path.join(home, 'postgres.log'),
        '-w',
        '-t',
        '60',
        'start',
        '-o',
        `-c listen_addresses=127.0.0.1 -p ${port} -c unix_socket_directories='' -c fsync=off -c synchronous_commit=off${sslOptions}`,
      ]);
    },
    async stop() {
      await ctl(['-m', 'fast', '-w', 'stop']);
    },
    async destroy() {
      await ctl(['-m', 'immediate', '-w', 'stop']).catch(() => undefined);
      await rm(home, { recursive: true, force: true });
    },
  };
  await server.start();
  return server;
}

async function postgresUser(): Promise<{ uid: number; gid: number }> {
  const uid = Number((await run('id', ['-u', 'postgres'])).stdout.trim());
  const gid = Number((await run('id', ['-g', 'postgres'])).stdout.trim());
  return { uid, gid };
}

async function asPostgres(command: string, args: string[]): Promise<void> {
  if (process.getuid?.() === 0) await run('runuser', ['-u', 'postgres', '--', command, ...args]);
  else await run(command, args);
}
