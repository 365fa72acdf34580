import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  eventually,
  type GatewayReplica,
  type HttpResponse,
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
    const tenant = await system.admin('POST', '/api/v1/tenants', {
      body: { name: 'Rollout Co', subdomain: SUBDOMAIN },
    });
    expect(tenant.status, tenant.text).toBe(201);
    tenantId = tenant.body['id'] as string;
    const [a, b] = await Promise.all(
      [originA, originB].map((origin) =>
        system.admin('POST', '/api/v1/origins', {
          body: { tenant_id: tenantId, name: origin.name, url: origin.url },
        }),
      ),
    );
    expect(a?.status, a?.text).toBe(201);
    expect(b?.status, b?.text).toBe(201);
    originBId = b?.body['id'] as string;
    const route = await system.admin('POST', '/api/v1/routes', {
      body: { tenant_id: tenantId, path_pattern: '/svc/*', origin_id: a?.body['id'], auth_mode: 'public' },
    });
    expect(route.status, route.text).toBe(201);
    routeId = route.body['id'] as string;
    const position = BigInt(route.headers.get('x-event-position') ?? '0');

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
});
