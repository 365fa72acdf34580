import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { distinctFreePorts } from '@vantageedge/shared/testing/free-ports';
import { REPO_ROOT } from '../dev-settings.js';

/** `make dev` as a person starts it, as a child of the test, its output kept. */
export interface MakeDevProcess {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
  startedAt: number;
}

/** A data folder of its own under the system's temporary folder, named `prefix…`. */
export function makeDevDataDir(prefix: string): string {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), prefix));
  // The embedded server runs as the postgres user (as root), which must reach the folder.
  chmodSync(dataDir, 0o755);
  return dataDir;
}

/**
 * The variables of a make dev with its data in `dataDir` and every port of its own (make dev's defaults,
 * 8443 for TLS among them, may be held by a developer's make dev or another run of a suite), everything
 * else embedded or in memory; `extra` on top.
 */
export async function makeDevEnv(dataDir: string, extra: NodeJS.ProcessEnv = {}): Promise<NodeJS.ProcessEnv> {
  const [controlPlanePort, gatewayPort, gatewayAdminPort, gatewayTlsPort, demoOriginPort, postgresPort] =
    await distinctFreePorts(6);
  return {
    ...process.env,
    // Empty = unset even when a .env file names them: everything embedded / in memory.
    DATABASE_URL: '',
    REDIS_URL: '',
    KAFKA_BROKERS: '',
    SNAPSHOT_BUS: '',
    EVENT_STORE: '',
    CLERK_JWT_KEY: '',
    CLERK_SECRET_KEY: '',
    PLATFORM_ADMIN_USER_IDS: '',
    API_KEY_PEPPER: '',
    VANTAGEEDGE_DEV_MODE: '',
    DEMO_ORIGIN_URL: '',
    LOG_LEVEL: 'warn',
    VANTAGEEDGE_DATA_DIR: dataDir,
    CONTROL_PLANE_PORT: String(controlPlanePort),
    GATEWAY_PORT: String(gatewayPort),
    GATEWAY_ADMIN_PORT: String(gatewayAdminPort),
    GATEWAY_TLS_PORT: String(gatewayTlsPort),
    DEMO_ORIGIN_PORT: String(demoOriginPort),
    VANTAGEEDGE_DEV_PG_PORT: String(postgresPort),
    ...extra,
  };
}

export function startMakeDev(env: NodeJS.ProcessEnv): MakeDevProcess {
  const startedAt = Date.now();
  const child = spawn(process.execPath, ['--import', 'tsx', 'services/dev/src/main.ts'], {
    cwd: REPO_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => output, exited, startedAt };
}

/** Resolves once make dev printed READY, at most `withinMs` after it was started; throws if it exits. */
export async function makeDevReady(dev: MakeDevProcess, withinMs = 90_000): Promise<void> {
  const deadline = dev.startedAt + withinMs;
  while (!/^READY$/m.test(dev.output())) {
    if (dev.child.exitCode !== null) throw new Error(`make dev exited early:\n${dev.output()}`);
    if (Date.now() > deadline) throw new Error(`make dev not ready in ${withinMs} ms:\n${dev.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Ctrl-C (SIGINT), as a person stops it: its exit code, once it exited. */
export async function stopMakeDev(dev: MakeDevProcess): Promise<number | null> {
  if (dev.child.exitCode !== null) return dev.child.exitCode;
  dev.child.kill('SIGINT');
  return dev.exited;
}
