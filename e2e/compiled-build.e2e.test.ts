import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createClerkTestKeys, OFFLINE_CLERK_ISSUER } from '@vantageedge/shared/testing/clerk-tokens';
import { TEST_INFRA, uniqueSuffix } from '@vantageedge/shared/testing/infrastructure';
import { uniqueTopic } from '@vantageedge/shared/testing/kafka';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUILD_ENTRY_POINTS } from '../scripts/build-entry-points.js';
import { distinctFreePorts, REPO_ROOT, type ServiceProcess, startService, waitForHttp } from './harness.js';

/**
 * The production build: `make build` bundles each service into dist/, and the compiled files run on
 * plain node (no tsx, no TypeScript sources) with only the npm dependencies in node_modules. Built
 * into a folder of its own under .data/ so parallel runs and a developer's dist/ do not collide.
 */
const outDir = path.join(REPO_ROOT, '.data', `build-test-${uniqueSuffix()}`);
const compiled = (entry: string) => path.join(outDir, `${entry}.js`);
const services: ServiceProcess[] = [];
let database: TestDatabase;

beforeAll(async () => {
  const build = spawnSync(
    process.execPath,
    ['--import', 'tsx', 'scripts/build.ts', '--outdir', path.relative(REPO_ROOT, outDir)],
    { cwd: REPO_ROOT, encoding: 'utf8' },
  );
  expect(build.status, `${build.stdout}\n${build.stderr}`).toBe(0);
  database = await createTestDatabase({ migrate: false });
});

afterAll(async () => {
  await Promise.all(services.map((service) => service.stop()));
  await database?.drop();
  await rm(outDir, { recursive: true, force: true });
});

describe('compiled build (dist/)', () => {
  it('emits every entry point with its source map', () => {
    expect(Object.keys(BUILD_ENTRY_POINTS)).toEqual(
      expect.arrayContaining(['services/gateway/main', 'services/control-plane/main', 'migrations/cli']),
    );
    for (const entry of Object.keys(BUILD_ENTRY_POINTS)) {
      expect(existsSync(compiled(entry)), entry).toBe(true);
      expect(existsSync(`${compiled(entry)}.map`), `${entry}.map`).toBe(true);
    }
  });

  it('migrates a fresh database with the compiled migrator (SQL files shipped beside it)', () => {
    const migrate = spawnSync(process.execPath, [compiled('migrations/cli'), 'up'], {
      cwd: REPO_ROOT,
      env: { ...process.env, DATABASE_URL: database.url },
      encoding: 'utf8',
    });
    expect(migrate.status, migrate.stderr).toBe(0);
    expect(migrate.stdout).toMatch(/applied 1_event_store/);
    expect(migrate.stdout).toMatch(/applied 30_snapshot_state/);
  });

  it('reads settings from a .env file in its working directory, the environment winning over it', async () => {
    const fresh = await createTestDatabase({ migrate: false });
    try {
      const workDir = path.join(outDir, 'dot-env');
      await mkdir(workDir, { recursive: true });
      const { DATABASE_URL: _unset, ...withoutDatabaseUrl } = process.env;
      const migrateIn = (env: NodeJS.ProcessEnv) =>
        spawnSync(process.execPath, [compiled('migrations/cli'), 'up'], {
          cwd: workDir,
          env,
          encoding: 'utf8',
        });

      await writeFile(path.join(workDir, '.env'), `# the migrator's database\nDATABASE_URL="${fresh.url}"\n`);
      const fromFile = migrateIn(withoutDatabaseUrl);
      expect(fromFile.status, fromFile.stderr).toBe(0);
      expect(fromFile.stdout).toMatch(/applied 1_event_store/);

      await writeFile(path.join(workDir, '.env'), 'DATABASE_URL=postgres://nobody:wrong@127.0.0.1:1/none\n');
      const fromEnvironment = migrateIn({ ...withoutDatabaseUrl, DATABASE_URL: fresh.url });
      expect(fromEnvironment.status, fromEnvironment.stderr).toBe(0);
      expect(fromEnvironment.stdout).toContain('migrations: up to date');
    } finally {
      await fresh.drop();
    }
  });

  it('runs the compiled vantageedge CLI on plain node', () => {
    const help = spawnSync(process.execPath, [compiled('tools/cli/main'), '--help'], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
    });
    expect(help.status, help.stderr).toBe(0);
    expect(help.stdout).toContain('Usage: vantageedge');
    const notLoggedIn = spawnSync(process.execPath, [compiled('tools/cli/main'), 'get', 'tenants'], {
      cwd: REPO_ROOT,
      env: { ...process.env, VANTAGEEDGE_CONFIG: path.join(outDir, 'no-such-config.json') },
      encoding: 'utf8',
    });
    expect(notLoggedIn.status).toBe(3);
  });

  it('starts the compiled control plane, projectors and gateway, and each answers /healthz', async () => {
    const clerk = await createClerkTestKeys();
    const [
      controlPlanePort,
      controlPlaneMetricsPort,
      gatewayPort,
      gatewayAdminPort,
      readModelsPort,
      snapshotsPort,
    ] = await distinctFreePorts(6);
    const common = {
      DATABASE_URL: database.url,
      EVENT_STORE: 'postgres',
      REDIS_URL: TEST_INFRA.redisUrl,
      KAFKA_BROKERS: TEST_INFRA.kafkaBrokers.join(','),
      SNAPSHOT_TOPIC: uniqueTopic('compiled-build'),
      SNAPSHOT_TOPIC_PARTITIONS: '1',
      API_KEY_PEPPER: `compiled-${uniqueSuffix()}-0123456789abcdefghijklmnopqrstuvwxyz`,
      CLERK_JWT_KEY: clerk.publicKeyPem,
      CLERK_ISSUER: OFFLINE_CLERK_ISSUER,
      PROJECTOR_METRICS_HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
    };
    const controlPlane = startService('control-plane (compiled)', compiled('services/control-plane/main'), {
      ...common,
      CONTROL_PLANE_PORT: String(controlPlanePort),
      CONTROL_PLANE_HOST: '127.0.0.1',
      CONTROL_PLANE_METRICS_PORT: String(controlPlaneMetricsPort),
    });
    const readModels = startService(
      'read-model-projector (compiled)',
      compiled('projections/read-models/main'),
      {
        ...common,
        READ_MODEL_PROJECTOR_METRICS_PORT: String(readModelsPort),
      },
    );
    const snapshots = startService('snapshot-projector (compiled)', compiled('projections/snapshots/main'), {
      ...common,
      SNAPSHOT_PROJECTOR_METRICS_PORT: String(snapshotsPort),
    });
    const gateway = startService('gateway (compiled)', compiled('services/gateway/main'), {
      ...common,
      GATEWAY_PORT: String(gatewayPort),
      GATEWAY_ADMIN_PORT: String(gatewayAdminPort),
      GATEWAY_HOST: '127.0.0.1',
      GATEWAY_REPLICA_ID: `compiled-${uniqueSuffix()}`,
    });
    services.push(controlPlane, readModels, snapshots, gateway);

    await Promise.all([
      waitForHttp(controlPlane, `http://127.0.0.1:${controlPlanePort}/healthz`),
      waitForHttp(readModels, `http://127.0.0.1:${readModelsPort}/healthz`),
      waitForHttp(snapshots, `http://127.0.0.1:${snapshotsPort}/healthz`),
      waitForHttp(gateway, `http://127.0.0.1:${gatewayAdminPort}/healthz`),
    ]);
    // The compiled gateway's metrics are the same series the dashboards read.
    const metrics = await (await fetch(`http://127.0.0.1:${gatewayAdminPort}/metrics`)).text();
    expect(metrics).toContain('vantageedge_gateway_requests_in_flight');
    const projectorMetrics = await (await fetch(`http://127.0.0.1:${readModelsPort}/metrics`)).text();
    expect(projectorMetrics).toMatch(/vantageedge_projector_lag_events\{[^}]*projection="read_models"/);
    // The control plane's metrics are on their own listener; the admin API, which tenant admins reach,
    // has none.
    const controlPlaneMetrics = await fetch(`http://127.0.0.1:${controlPlaneMetricsPort}/metrics`);
    expect(await controlPlaneMetrics.text()).toContain(
      'vantageedge_control_plane_http_request_duration_seconds',
    );
    expect((await fetch(`http://127.0.0.1:${controlPlanePort}/metrics`)).status).toBe(404);
  });
});
