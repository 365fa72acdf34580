import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { TEST_INFRA } from '@vantageedge/shared/testing/infrastructure';
import { deleteTestTopics, deleteTopicUntilGone, uniqueTopic } from '@vantageedge/shared/testing/kafka';
import { serviceNodeArgs } from '@vantageedge/shared/testing/service-bundle';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ENTRY_POINTS,
  eventually,
  type GatewayReplica,
  REPO_ROOT,
  startOrigin,
  startService,
  stopAllServices,
  type TestOrigin,
  TestSystem,
} from './harness.js';

/**
 * Recovering the gateways' config after an incident, with real processes (docs/deployment.md): the
 * snapshot topic lost, then the database restored from a backup older than the topic. Snapshot versions
 * are event positions and a replica keeps a tenant's newest version, so after the restore a running
 * replica keeps the lost config and drops the restored store's (lower) versions; the runbook rebuilds
 * the snapshots on a fresh topic and rolls the replicas onto it.
 */
const SUBDOMAIN = 'restored';
const rebuiltTopic = uniqueTopic('e2e-snapshots-rebuilt');
const run = promisify(execFile);

let system: TestSystem;
let origin: TestOrigin;
let before: GatewayReplica;
let backupName = '';
let tenantId = '';
let originId = '';

async function onServer<T>(query: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: new URL('/postgres', TEST_INFRA.databaseUrl).toString() });
  await client.connect();
  try {
    return await query(client);
  } finally {
    await client.end();
  }
}

/** `create database <to> template <from>`: a consistent copy, as a backup taken with nothing writing. */
async function copyDatabase(from: string, to: string): Promise<void> {
  await onServer(async (client) => {
    await client.query('select pg_terminate_backend(pid) from pg_stat_activity where datname = $1', [from]);
    await client.query(`create database ${to} template ${from}`);
  });
}

/** The control plane and both projectors stopped: nothing writes to the database. */
async function stopControlSide(): Promise<void> {
  const controlSide = system.services.filter((service) => !service.name.startsWith('gateway'));
  await Promise.all(controlSide.map((service) => service.stop()));
}

async function createRoute(pathPattern: string): Promise<void> {
  const route = await system.admin('POST', '/api/v1/routes', {
    body: { tenant_id: tenantId, path_pattern: pathPattern, origin_id: originId, auth_mode: 'public' },
  });
  expect(route.status, route.text).toBe(201);
}

/** `make republish-snapshots` as an operator runs it; resolves with its output once it exits 0. */
async function republishSnapshots(env: Record<string, string>): Promise<string> {
  const { stdout } = await run(
    process.execPath,
    serviceNodeArgs('projections/src/snapshots/republish-cli.ts'),
    {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env },
    },
  );
  return stdout;
}

async function serves(replica: GatewayReplica, pathname: string): Promise<number> {
  return (await replica.get(SUBDOMAIN, pathname)).status;
}

beforeAll(async () => {
  system = await TestSystem.create();
  origin = await startOrigin('origin');
  await system.startControlSide();
  [before] = (await system.startGateways(1)) as [GatewayReplica];
  backupName = `${system.database.name}_backup`;
}, 180_000);

afterAll(async () => {
  await system?.close();
  await origin?.close();
  await stopAllServices();
  await onServer((client) => client.query(`drop database if exists ${backupName} with (force)`)).catch(
    () => {},
  );
  await deleteTestTopics([rebuiltTopic]);
});

describe('the snapshot topic lost', () => {
  it('a running replica keeps serving, and serves the changes made after the topic was rebuilt', async () => {
    const tenant = await system.admin('POST', '/api/v1/tenants', {
      body: { name: 'Restored Inc', subdomain: SUBDOMAIN, clerk_org_id: 'org_restored' },
    });
    expect(tenant.status, tenant.text).toBe(201);
    tenantId = tenant.body['id'] as string;
    const created = await system.admin('POST', '/api/v1/origins', {
      body: { tenant_id: tenantId, name: 'main', url: origin.url },
    });
    expect(created.status, created.text).toBe(201);
    originId = created.body['id'] as string;
    await createRoute('/kept/*');
    await eventually('the route reaches the replica', async () => (await serves(before, '/kept/x')) === 200, {
      system,
    });

    await deleteTopicUntilGone(system.topic);
    expect(await serves(before, '/kept/x'), 'served while the topic is lost').toBe(200);

    expect(await republishSnapshots(system.commonEnv())).toContain('every snapshot is on the topic again');
    await createRoute('/after-loss/*');
    await eventually(
      'the route made after the topic was rebuilt reaches the running replica',
      async () => (await serves(before, '/after-loss/x')) === 200,
      { system },
    );
    const [started] = (await system.startGateways(1)) as [GatewayReplica];
    expect(await serves(started, '/kept/x'), 'a replica started on the rebuilt topic').toBe(200);
    await started.service.stop();
  }, 180_000);
});

describe('the database restored from a backup older than the snapshot topic', () => {
  it('a replica rolled onto the rebuilt topic serves the restored config, then the changes made after it', async () => {
    // The backup, then a change it does not hold (the lost window), which the replica serves.
    await stopControlSide();
    await copyDatabase(system.database.name, backupName);
    await system.startControlSide();
    await createRoute('/lost/*');
    await eventually(
      'the lost route reaches the replica',
      async () => (await serves(before, '/lost/x')) === 200,
      {
        system,
      },
    );

    // The incident: the database is restored from the backup.
    await stopControlSide();
    await onServer((client) => client.query(`drop database ${system.database.name} with (force)`));
    await copyDatabase(backupName, system.database.name);

    // The snapshot projector started on the old topic finds it ahead of the restored store: it
    // publishes nothing (the replica's lost route stays) and says why.
    const onOldTopic = startService('snapshot-projector', ENTRY_POINTS.snapshots, {
      ...system.commonEnv(),
      SNAPSHOT_PROJECTOR_METRICS_PORT: '0',
    });
    system.services.push(onOldTopic);
    await onOldTopic.waitForLine('snapshot topic holds newer versions than the store', 60_000);
    await onOldTopic.stop();

    // The runbook: the snapshot projector started on a fresh topic publishes every tenant of the
    // restored store itself; the replica is rolled onto it.
    const onRebuiltTopic = { ...system.commonEnv(), SNAPSHOT_TOPIC: rebuiltTopic };
    const snapshots = startService('snapshot-projector', ENTRY_POINTS.snapshots, {
      ...onRebuiltTopic,
      SNAPSHOT_PROJECTOR_METRICS_PORT: '0',
    });
    system.services.push(snapshots);
    await snapshots.waitForLine('every tenant is published again', 60_000);
    const [rolled] = (await system.startGateways(1, { SNAPSHOT_TOPIC: rebuiltTopic })) as [GatewayReplica];
    await before.service.stop();
    await eventually(
      'the restored config reaches the rolled replica',
      async () => (await serves(rolled, '/kept/x')) === 200,
      { system },
    );
    expect(await serves(rolled, '/lost/x'), 'a route the restored store does not have').toBe(404);

    // Writes again: a change made after the restore reaches the rolled replica.
    const readModels = startService('read-model-projector', ENTRY_POINTS.readModels, {
      ...onRebuiltTopic,
      READ_MODEL_PROJECTOR_METRICS_PORT: '0',
    });
    system.services.push(readModels);
    system.controlPlaneUrl = await system.startControlPlane('control-plane', onRebuiltTopic);
    await createRoute('/after/*');
    await eventually(
      'the route made after the restore reaches the rolled replica',
      async () => (await serves(rolled, '/after/x')) === 200,
      { system },
    );
  }, 240_000);
});
