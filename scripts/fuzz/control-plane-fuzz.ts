import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import path from 'node:path';
import {
  createClerkTestKeys,
  OFFLINE_CLERK_ISSUER,
  signClerkToken,
} from '@vantageedge/shared/testing/clerk-tokens';
import { TEST_INFRA, uniqueSuffix } from '@vantageedge/shared/testing/infrastructure';
import { createTestDatabase } from '@vantageedge/shared/testing/postgres';
import { ENTRY_POINTS, freePort, REPO_ROOT, startService, waitForHttp } from '../../e2e/harness.js';

/**
 * `make test-fuzz`: the control plane's API contract, checked from the outside by Schemathesis.
 *
 * Starts the control plane and the read-model projector as their own processes (a fresh PostgreSQL
 * database, the local Redis, a generated Clerk key pair whose public half is CLERK_JWT_KEY), signs a
 * platform-admin token, and runs `schemathesis run /openapi.json --checks all` with a fixed seed and a
 * bounded number of examples. Exits with Schemathesis' status: 0 only when no check failed.
 * Schemathesis is installed into .data/venv (a project-local Python venv) when missing.
 */

const SCHEMATHESIS_VERSION = '4.32.5';
const VENV = path.join(REPO_ROOT, '.data', 'venv');
const SCHEMATHESIS = path.join(VENV, 'bin', 'schemathesis');
const SEED = process.env['FUZZ_SEED'] ?? '20261127';
const MAX_EXAMPLES = process.env['FUZZ_MAX_EXAMPLES'] ?? '10';
const ADMIN_USER_ID = 'user_fuzz_platform_admin';

function run(command: string, args: string[]): void {
  const result = spawnSync(command, args, { stdio: 'inherit' });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (${result.status})`);
}

function output(command: string, args: string[]): string {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  return result.status === 0 ? `${result.stdout}${result.stderr}`.trim() : '';
}

/** Python 3.13+ where the machine has one (also a pyenv-installed one), else python3. */
function pythonToUse(): string {
  if (output('python3.13', ['--version']).startsWith('Python 3.13')) return 'python3.13';
  const pyenvRoot = output('pyenv', ['root']);
  if (pyenvRoot !== '') {
    const newest = output('pyenv', ['versions', '--bare'])
      .split('\n')
      .map((line) => line.trim())
      .filter((version) => /^3\.(1[3-9]|[2-9][0-9])\.\d+$/.test(version))
      .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }))
      .at(-1);
    if (newest !== undefined) return path.join(pyenvRoot, 'versions', newest, 'bin', 'python3');
  }
  return 'python3';
}

/**
 * CPython before 3.13 can fail with "AST constructor recursion depth mismatch" when Schemathesis'
 * worker threads parse code at the same time: those run one worker.
 */
function workersFor(pythonVersion: string): string {
  const minor = Number(/^Python 3\.(\d+)/.exec(pythonVersion)?.[1] ?? '0');
  return minor >= 13 ? '2' : '1';
}

/** Installs Schemathesis into .data/venv unless it is there at this version; the venv's Python version. */
function ensureSchemathesis(): string {
  const python = pythonToUse();
  const wanted = output(python, ['--version']);
  if (!wanted.startsWith('Python 3.'))
    throw new Error('make test-fuzz needs Python 3 (python3) for Schemathesis');
  const venvPython = path.join(VENV, 'bin', 'python');
  const installed = /version (\S+)/.exec(output(SCHEMATHESIS, ['--version']))?.[1];
  if (installed === SCHEMATHESIS_VERSION && output(venvPython, ['--version']) === wanted) return wanted;
  process.stdout.write(`installing schemathesis ${SCHEMATHESIS_VERSION} into ${VENV} (${wanted})\n`);
  rmSync(VENV, { recursive: true, force: true });
  run(python, ['-m', 'venv', VENV]);
  run(venvPython, ['-m', 'pip', 'install', '--quiet', `schemathesis==${SCHEMATHESIS_VERSION}`]);
  return wanted;
}

async function main(): Promise<number> {
  const workers = workersFor(ensureSchemathesis());
  const [database, clerk, port] = await Promise.all([
    createTestDatabase(),
    createClerkTestKeys(),
    freePort(),
  ]);
  const env = {
    DATABASE_URL: database.url,
    EVENT_STORE: 'postgres',
    REDIS_URL: TEST_INFRA.redisUrl,
    ROLLOUT_KEY_PREFIX: `ve-test-fuzz-rollout-${uniqueSuffix()}:`,
    GATEWAY_REDIS_KEY_PREFIX: `ve-test-fuzz-${uniqueSuffix()}:`,
    API_KEY_PEPPER: `fuzz-pepper-${uniqueSuffix()}-0123456789abcdefghijklmnopqrstuvwxyz`,
    CLERK_JWT_KEY: clerk.publicKeyPem,
    CLERK_ISSUER: OFFLINE_CLERK_ISSUER,
    PLATFORM_ADMIN_USER_IDS: ADMIN_USER_ID,
    LOG_LEVEL: 'warn',
    OTEL_ENABLED: 'false',
    // Certificates switched on, so their endpoints are fuzzed instead of answering 503 unconfigured.
    CERTIFICATE_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    CONTROL_PLANE_DRAIN_SECONDS: '0',
  };
  const controlPlane = startService('control-plane', ENTRY_POINTS.controlPlane, {
    ...env,
    CONTROL_PLANE_PORT: String(port),
    CONTROL_PLANE_HOST: '127.0.0.1',
    // One admin sends every example as fast as it can: admin rate limits off, so each operation is
    // checked on its own answers rather than on 429s (the limits have their own integration tests).
    CONTROL_PLANE_TENANT_COMMANDS_PER_MINUTE: '0',
    CONTROL_PLANE_USER_REQUESTS_PER_MINUTE: '0',
  });
  const projector = startService('read-model-projector', ENTRY_POINTS.readModels, {
    ...env,
    LOG_LEVEL: 'info',
  });
  // Folds each change into the tenants' gateway config, so `wait_for_rollout` sees it (no gateway
  // replica runs, so a folded change is live everywhere).
  const snapshots = startService('snapshot-projector', ENTRY_POINTS.snapshots, {
    ...env,
    LOG_LEVEL: 'info',
    // A topic of its own on the test Kafka: a projector in a process of its own refuses the
    // in-memory bus (make dev's alone).
    SNAPSHOT_BUS: 'kafka',
    KAFKA_BROKERS: TEST_INFRA.kafkaBrokers.join(','),
    SNAPSHOT_TOPIC: `ve-test-fuzz-snapshots-${uniqueSuffix()}`,
    SNAPSHOT_TOPIC_PARTITIONS: '1',
    SNAPSHOT_PROJECTOR_METRICS_PORT: '0',
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  try {
    await Promise.all([
      waitForHttp(controlPlane, `${baseUrl}/readyz`),
      projector.waitForLine('read-model projector started', 60_000),
      snapshots.waitForLine('snapshot projector started', 60_000),
    ]);
    const token = await signClerkToken(clerk, { userId: ADMIN_USER_ID, expiresInSeconds: 3600 });
    const args = [
      '--config-file',
      path.join(REPO_ROOT, 'scripts', 'fuzz', 'schemathesis.toml'),
      'run',
      `${baseUrl}/openapi.json`,
      '--checks',
      'all',
      '--seed',
      SEED,
      '--max-examples',
      MAX_EXAMPLES,
      '--workers',
      workers,
      // A command with wait_for_rollout may hold its answer up to 60 s.
      '--request-timeout',
      '70',
      '--header',
      `Authorization: Bearer ${token}`,
      '--no-color',
      ...process.argv.slice(2),
    ];
    const status = await new Promise<number>((resolve) => {
      const child = spawn(SCHEMATHESIS, args, { stdio: 'inherit', cwd: REPO_ROOT });
      child.once('exit', (code) => resolve(code ?? 1));
    });
    if (status !== 0) process.stderr.write(`${controlPlane.tail()}\n`);
    return status;
  } finally {
    await Promise.all([controlPlane.stop(), projector.stop(), snapshots.stop()]);
    await database.drop().catch(() => {});
  }
}

process.exitCode = await main();
