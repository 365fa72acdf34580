import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The infra scripts against PRIVATE instances (own data folder, own free ports), never the shared
 * servers: idempotent `up`, restart after a crash, `down` stops exactly what `up` started.
 */

const INFRA = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

interface ScriptResult {
  code: number;
  stdout: string;
  stderr: string;
}

function runScript(script: string, action: string, env: Record<string, string>): Promise<ScriptResult> {
  return new Promise((resolve) => {
    execFile(
      'bash',
      [path.join(INFRA, script), action],
      { env: { ...process.env, ...env }, timeout: 120_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** True while `pid` runs; a zombie (exited, not yet reaped by init) has stopped running. */
function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

async function readPid(file: string): Promise<number> {
  return Number((await readFile(file, 'utf8')).trim().split('\n')[0]);
}

/** Resolves once `pid` has exited (a killed server may take a moment to go). */
async function waitForExit(pid: number): Promise<void> {
  while (isRunning(pid)) await new Promise((resolve) => setTimeout(resolve, 50));
}

function redisPing(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => socket.write('PING\r\n'));
    socket.once('data', (data) => {
      socket.destroy();
      resolve(data.toString().trim());
    });
    socket.once('error', reject);
  });
}

describe('infra/redis.sh on a private instance', () => {
  let dataDir: string;
  let env: Record<string, string>;
  let port: number;
  let pidFile: string;

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 've-infra-redis-'));
    port = await freePort();
    env = { VE_DATA: dataDir, VE_REDIS_PORT: String(port) };
    pidFile = path.join(dataDir, 'redis', 'redis.pid');
  });

  afterAll(async () => {
    await runScript('redis.sh', 'down', env);
    await rm(dataDir, { recursive: true, force: true });
  });

  it('starts, and a second `up` keeps the same server', async () => {
    const first = await runScript('redis.sh', 'up', env);
    expect(first.code).toBe(0);
    expect(await redisPing(port)).toBe('+PONG');
    const pid = await readPid(pidFile);

    const second = await runScript('redis.sh', 'up', env);
    expect(second.code).toBe(0);
    expect(second.stderr).toContain('already running');
    expect(await readPid(pidFile)).toBe(pid);
    expect((await runScript('redis.sh', 'status', env)).code).toBe(0);
  });

  it('restarts the server after it was killed', async () => {
    const killed = await readPid(pidFile);
    process.kill(killed, 'SIGKILL');
    await waitForExit(killed);
    expect((await runScript('redis.sh', 'status', env)).code).toBe(1);

    const again = await runScript('redis.sh', 'up', env);
    expect(again.code).toBe(0);
    expect(await readPid(pidFile)).not.toBe(killed);
    expect(await redisPing(port)).toBe('+PONG');
  });

  it('`down` stops the server it started and leaves no process behind', async () => {
    const pid = await readPid(pidFile);
    const down = await runScript('redis.sh', 'down', env);
    expect(down.code).toBe(0);
    expect(isRunning(pid)).toBe(false);
    expect((await runScript('redis.sh', 'status', env)).code).toBe(1);
    expect((await runScript('redis.sh', 'down', env)).stderr).toContain('not running');
  });

  it('`down` leaves alone a process that merely has the pid in a stale pid file', async () => {
    const bystander = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      await writeFile(pidFile, `${bystander.pid}\n`);
      expect((await runScript('redis.sh', 'down', env)).code).toBe(0);
      expect(isRunning(bystander.pid ?? -1)).toBe(true);
    } finally {
      bystander.kill('SIGKILL');
    }
  });

  it('refuses to start on a port another program already uses, naming the port', async () => {
    const squatter = net.createServer();
    await new Promise<void>((resolve) => squatter.listen(port, '127.0.0.1', resolve));
    try {
      const result = await runScript('redis.sh', 'up', env);
      expect(result.code).not.toBe(0);
      expect(result.stderr).toContain(`127.0.0.1:${port} is already in use`);
    } finally {
      await new Promise((resolve) => squatter.close(resolve));
    }
  });
});

describe('infra/postgres.sh on a private instance', () => {
  let dataDir: string;
  let env: Record<string, string>;
  let port: number;

  beforeAll(async () => {
    // mkdtemp makes a 0700 root folder the postgres OS user cannot enter: exercises the fallback.
    dataDir = await mkdtemp(path.join(os.tmpdir(), 've-infra-pg-'));
    port = await freePort();
    env = { VE_DATA: dataDir, VE_PG_PORT: String(port) };
  });

  afterAll(async () => {
    await runScript('postgres.sh', 'reset', env);
    await rm(dataDir, { recursive: true, force: true });
  });

  async function selectOne(): Promise<number> {
    const client = new pg.Client({
      connectionString: `postgres://vantageedge:vantageedge@127.0.0.1:${port}/vantageedge`,
    });
    await client.connect();
    try {
      const { rows } = await client.query<{ one: number }>('select 1 as one');
      return rows[0]?.one ?? 0;
    } finally {
      await client.end();
    }
  }

  it('initialises, starts with the project database, and a second `up` is a no-op', async () => {
    const first = await runScript('postgres.sh', 'up', env);
    expect(first.stderr).not.toContain('ERROR');
    expect(first.code).toBe(0);
    expect(await selectOne()).toBe(1);

    const second = await runScript('postgres.sh', 'up', env);
    expect(second.code).toBe(0);
    expect(second.stderr).toContain('already running');
  });

  it('restarts after the server was killed', async () => {
    const pid = await readPid(path.join(dataDir, 'postgres.pid'));
    process.kill(pid, 'SIGKILL');
    await waitForExit(pid);
    const again = await runScript('postgres.sh', 'up', env);
    expect(again.stderr).not.toContain('ERROR');
    expect(again.code).toBe(0);
    expect(await selectOne()).toBe(1);
  });

  it('`down` stops it and leaves no server process', async () => {
    const pid = await readPid(path.join(dataDir, 'postgres.pid'));
    expect((await runScript('postgres.sh', 'down', env)).code).toBe(0);
    expect(isRunning(pid)).toBe(false);
    expect((await runScript('postgres.sh', 'status', env)).code).toBe(1);
  });
});
