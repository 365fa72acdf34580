import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { newEvent, originState, routeState } from '@vantageedge/projections/snapshots/testing';
import { streamName } from '@vantageedge/shared/domain/events';
import { PostgresEventStore } from '@vantageedge/shared/event-store/postgres/postgres-event-store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  eventually,
  type GatewayReplica,
  type HttpResponse,
  runVantageedge,
  startOrigin,
  stopAllServices,
  type TestOrigin,
  TestSystem,
} from './harness.js';

/**
 * Rollout status at system level: the control plane reports which gateway replicas (separate
 * processes, heartbeating through Redis) serve which snapshot version of a tenant, and a command with
 * `?wait_for_rollout=5s` answers only once every replica has applied it — so the very next request to
 * any replica sees the change, with no polling.
 */
const SUBDOMAIN = 'rollout';

interface RolloutBody {
  tenant_id: string;
  target_version: string;
  deleted: boolean;
  replicas: Array<{ replica_id: string; applied_version: string | null; up_to_date: boolean }>;
  live_everywhere: boolean;
  quarantined_since: string | null;
}

let system: TestSystem;
let originA: TestOrigin;
let originB: TestOrigin;
let replicas: GatewayReplica[] = [];
let tenantId = '';
let routeId = '';
let originBId = '';

beforeAll(async () => {
  system = await TestSystem.create();
  [originA, originB] = await Promise.all([startOrigin('origin-a'), startOrigin('origin-b')]);
  await system.startControlSide();
  replicas = await system.startGateways(2);
}, 180_000);

afterAll(async () => {
  await system?.close();
  await Promise.all([originA?.close(), originB?.close()]);
  await stopAllServices();
});

const originOf = (response: HttpResponse) => response.headers['x-origin'];

describe('rollout status across gateway processes', () => {
  it('GET /api/v1/tenants/:id/rollout lists both replicas with the version they applied', async () => {
    tenantId = (await system.create('/api/v1/tenants', { name: 'Rollout Co', subdomain: SUBDOMAIN })).id;
    const [a, b] = await Promise.all(
      [originA, originB].map((origin) =>
        system.create('/api/v1/origins', { tenant_id: tenantId, name: origin.name, url: origin.url }),
      ),
    );
    originBId = b!.id;
    const route = await system.create('/api/v1/routes', {
      tenant_id: tenantId,
      path_pattern: '/svc/*',
      origin_id: a!.id,
      auth_mode: 'public',
    });
    routeId = route.id;
    const { position } = route;

    let status: RolloutBody | undefined;
    await eventually(
      'rollout status shows both replicas up to date with the route',
      async () => {
        const response = await system.admin('GET', `/api/v1/tenants/${tenantId}/rollout`);
        if (response.status !== 200) return false;
        status = response.body as unknown as RolloutBody;
        return (
          BigInt(status.target_version) >= position &&
          replicas.every((replica) =>
            status?.replicas.some((r) => r.replica_id === replica.id && r.up_to_date),
          )
        );
      },
      { system, timeoutMs: 30_000, intervalMs: 100 },
    );
    const body = status as RolloutBody;
    console.info(`[e2e] rollout status: ${JSON.stringify(body)}`);
    expect(body.tenant_id).toBe(tenantId);
    expect(body.deleted).toBe(false);
    expect(body.live_everywhere).toBe(true);
    for (const replica of replicas) {
      const row = body.replicas.find((r) => r.replica_id === replica.id);
      expect(row?.applied_version).toBe(body.target_version);
      // What the replica itself reports applying agrees.
      const served = await replica.get(SUBDOMAIN, '/svc/x');
      expect(served.status).toBe(200);
      expect(originOf(served)).toBe('origin-a');
    }
  }, 60_000);

  it('a command with ?wait_for_rollout=5s returns once both replicas apply it; the next request sees it', async () => {
    const sentAt = performance.now();
    const patched = await system.admin('PATCH', `/api/v1/routes/${routeId}?wait_for_rollout=5s`, {
      body: { origin_id: originBId },
    });
    const waitedMs = performance.now() - sentAt;
    expect(patched.status, patched.text).toBe(200);
    expect(patched.headers.get('x-rollout')).toBe('complete');
    console.info(
      `[e2e] PATCH ?wait_for_rollout=5s answered after ${waitedMs.toFixed(1)} ms (rollout complete)`,
    );
    // No polling: the command's answer means every replica already serves the change.
    for (const replica of replicas) {
      const served = await replica.get(SUBDOMAIN, '/svc/x');
      expect(served.status).toBe(200);
      expect(originOf(served), replica.id).toBe('origin-b');
    }
    const position = BigInt(patched.headers.get('x-event-position') ?? '0');
    const status = await system.admin('GET', `/api/v1/tenants/${tenantId}/rollout`);
    expect(status.status, status.text).toBe(200);
    const body = status.body as unknown as RolloutBody;
    expect(BigInt(body.target_version)).toBeGreaterThanOrEqual(position);
    for (const replica of replicas) {
      const row = body.replicas.find((r) => r.replica_id === replica.id);
      expect(row?.up_to_date, replica.id).toBe(true);
      expect(BigInt(row?.applied_version ?? '-1')).toBeGreaterThanOrEqual(position);
    }
  }, 30_000);

  // The snapshot projector parks an event it cannot fold and quarantines its tenant: every later change
  // of the tenant (a revoked key, too) stays out of its snapshots, so the replicas keep serving the old
  // config. The rollout must not call that change live: an operator waiting on a revocation would trust it.
  it('a change of a tenant quarantined in the snapshots is never reported live; its replicas still serve the old config', async () => {
    const subdomain = 'rollout-parked';
    const parkedTenant = (await system.create('/api/v1/tenants', { name: 'Parked Co', subdomain })).id;
    const origin = await system.create('/api/v1/origins', {
      tenant_id: parkedTenant,
      name: originA.name,
      url: originA.url,
    });
    await system.create('/api/v1/routes', {
      tenant_id: parkedTenant,
      path_pattern: '/keyed/*',
      origin_id: origin.id,
      auth_mode: 'apikey_required',
    });
    const key = await system.admin('POST', '/api/v1/api-keys?wait_for_rollout=20s', {
      body: { tenant_id: parkedTenant, name: 'leaks-soon', scopes: ['read'] },
    });
    expect(key.status, key.text).toBe(201);
    expect(key.headers.get('x-rollout')).toBe('complete');
    const keyId = key.body['id'] as string;
    const apiKey = key.body['key'] as string;
    for (const replica of replicas) {
      expect((await replica.get(subdomain, '/keyed/x', { 'x-api-key': apiKey })).status).toBe(200);
    }

    // An event of the tenant that the snapshot fold cannot apply (PostgreSQL refuses its tenant id).
    const store = new PostgresEventStore({ pool: system.database.pool });
    const brokenRoute = {
      ...routeState(parkedTenant, originState(parkedTenant).origin_id),
      tenant_id: 'not-a-uuid',
    };
    const brokenEvent = newEvent('RouteCreated', brokenRoute as never);
    const broken = await store
      .appendToStream(streamName.route(brokenRoute.route_id), [
        { ...brokenEvent, metadata: { ...brokenEvent.metadata, tenant_id: parkedTenant } },
      ])
      .finally(() => store.close());

    const revoked = await system.admin('POST', `/api/v1/api-keys/${keyId}/revoke?wait_for_rollout=5s`, {
      body: { reason: 'e2e: leaked' },
    });
    expect(revoked.status, revoked.text).toBe(202);
    expect(revoked.headers.get('x-rollout')).toBe('pending');
    const rollout = revoked.body['rollout'] as unknown as RolloutBody;
    expect(rollout.live_everywhere).toBe(false);
    expect(rollout.quarantined_since).toBe(broken.position.toString());
    // What the operator was told is what the replicas do: the revoked key still works on them.
    for (const replica of replicas) {
      expect((await replica.get(subdomain, '/keyed/x', { 'x-api-key': apiKey })).status, replica.id).toBe(
        200,
      );
    }
    const status = await system.admin('GET', `/api/v1/tenants/${parkedTenant}/rollout`);
    expect(status.status, status.text).toBe(200);
    expect(status.body).toMatchObject({
      live_everywhere: false,
      quarantined_since: broken.position.toString(),
    });

    // The operator's CLI says so too.
    const folder = await mkdtemp(path.join(os.tmpdir(), 'vantageedge-e2e-rollout-'));
    try {
      const cli = {
        configFile: path.join(folder, 'config.json'),
        env: { VANTAGEEDGE_URL: system.controlPlaneUrl },
      };
      const login = await runVantageedge(['login', '--url', system.controlPlaneUrl, '--token-stdin'], {
        ...cli,
        input: await system.token(),
      });
      expect(login.code, login.stderr).toBe(0);
      const listed = await runVantageedge(['get', 'rollout', '-t', subdomain], cli);
      expect(listed.code, listed.stderr).toBe(0);
      expect(listed.stderr).toContain(`event at position ${broken.position} could not be folded`);
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  }, 60_000);
});
