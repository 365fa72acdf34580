import type { IncomingMessage } from 'node:http';
import { startTestDnsServer, type TestDnsServer } from '@vantageedge/shared/testing/dns-server';
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
 * Regression test for host takeover, through real processes (control plane → event store → snapshot
 * projector → Kafka → two gateway replicas): a tenant admin used to capture another tenant's host —
 * and the Authorization headers of its callers — by listing it in settings.custom_domains. Now tenant
 * B's admin can claim neither tenant A's custom domain nor any subdomain host, a pending claim serves
 * nothing, and A's domain, verified through a DNS TXT record (a test DNS server), serves on every replica.
 */

let system: TestSystem;
let dns: TestDnsServer;
let alphaOrigin: TestOrigin;
let bravoOrigin: TestOrigin;
let replicas: GatewayReplica[] = [];
const authorizationSeenBy = new Map<string, string[]>();
let bravoAdminToken = '';
/** Position of the last event that changed tenant B's gateway snapshot (its admin user). */
let bravoSnapshotPosition = 0n;

const ALPHA_DOMAIN = 'shop.alpha-corp.example';

function recordAuthorization(name: string) {
  return (req: IncomingMessage) => {
    const list = authorizationSeenBy.get(name) ?? [];
    if (req.headers.authorization) list.push(req.headers.authorization);
    authorizationSeenBy.set(name, list);
    return false;
  };
}

function originOf(response: HttpResponse): string | undefined {
  const header = response.headers['x-origin'];
  return typeof header === 'string' ? header : undefined;
}

async function createTenantWithRoute(name: string, subdomain: string, origin: TestOrigin): Promise<string> {
  const tenant = await system.admin('POST', '/api/v1/tenants', { body: { name, subdomain } });
  expect(tenant.status, tenant.text).toBe(201);
  const tenantId = tenant.body['id'] as string;
  const created = await system.admin('POST', '/api/v1/origins', {
    body: { tenant_id: tenantId, name: origin.name, url: origin.url },
  });
  expect(created.status, created.text).toBe(201);
  const route = await system.admin('POST', '/api/v1/routes', {
    body: { tenant_id: tenantId, origin_id: created.body['id'], path_pattern: '/svc/*', auth_mode: 'public' },
  });
  expect(route.status, route.text).toBe(201);
  return tenantId;
}

beforeAll(async () => {
  dns = await startTestDnsServer();
  system = await TestSystem.create({ controlPlaneEnv: { DNS_RESOLVER: dns.address } });
  [alphaOrigin, bravoOrigin] = await Promise.all([
    startOrigin('alpha-origin', recordAuthorization('alpha-origin')),
    startOrigin('bravo-origin', recordAuthorization('bravo-origin')),
  ]);
  await system.startControlSide();
  replicas = await system.startGateways(2);
}, 240_000);

afterAll(async () => {
  await system?.close();
  await Promise.all([alphaOrigin?.close(), bravoOrigin?.close(), dns?.close()]);
  await stopAllServices();
});

describe('custom domains across processes', () => {
  let alphaId = '';
  let bravoId = '';

  it("tenant B's admin can claim neither tenant A's verified domain nor a subdomain host", async () => {
    alphaId = await createTenantWithRoute('Alpha Corp', 'alpha', alphaOrigin);
    bravoId = await createTenantWithRoute('Bravo Corp', 'bravo', bravoOrigin);
    const bravoAdmin = await system.admin('POST', '/api/v1/users', {
      body: {
        tenant_id: bravoId,
        clerk_user_id: 'user_bravo_admin',
        email: 'admin@bravo.example',
        role: 'admin',
      },
    });
    expect(bravoAdmin.status, bravoAdmin.text).toBe(201);
    bravoSnapshotPosition = BigInt(bravoAdmin.headers.get('x-event-position') ?? '0');
    bravoAdminToken = await system.token({ userId: 'user_bravo_admin' });

    // Alpha claims its domain and proves ownership with the TXT record.
    const claim = await system.admin('POST', `/api/v1/tenants/${alphaId}/domains`, {
      body: { domain: ALPHA_DOMAIN },
    });
    expect(claim.status, claim.text).toBe(201);
    const verification = claim.body['verification'] as { name: string; value: string };
    dns.setTxt(verification.name, [verification.value]);
    const verified = await system.admin('POST', `/api/v1/tenants/${alphaId}/domains/${ALPHA_DOMAIN}/verify`);
    expect(verified.status, verified.text).toBe(200);
    expect(verified.body['status']).toBe('verified');

    // Bravo's admin tries every way in.
    const asBravo = (method: string, path: string, body: unknown) =>
      system.admin(method, path, { token: bravoAdminToken, body });
    const taken = await asBravo('POST', `/api/v1/tenants/${bravoId}/domains`, { domain: ALPHA_DOMAIN });
    expect(taken.status, taken.text).toBe(409);
    for (const platformHost of ['alpha.localhost', 'alpha.vantageedge.dev', 'charlie.localhost']) {
      const refused = await asBravo('POST', `/api/v1/tenants/${bravoId}/domains`, { domain: platformHost });
      expect(refused.status, `${platformHost}: ${refused.text}`).toBe(400);
    }
    const legacy = await asBravo('PATCH', `/api/v1/tenants/${bravoId}`, {
      settings: { custom_domains: ['alpha.localhost', ALPHA_DOMAIN] },
    });
    expect(legacy.status, legacy.text).toBe(400);
    const assign = await asBravo('POST', `/api/v1/tenants/${bravoId}/domains`, {
      domain: 'api.bravo-corp.example',
      verified: true,
    });
    expect(assign.status, assign.text).toBe(403);
    // A free name can be claimed, but stays pending: it serves nothing until verified.
    const pending = await asBravo('POST', `/api/v1/tenants/${bravoId}/domains`, {
      domain: 'pending.bravo-corp.example',
    });
    expect(pending.status, pending.text).toBe(201);

    // A tenant created afterwards with a subdomain nobody else can shadow.
    await createTenantWithRoute('Charlie Corp', 'charlie', alphaOrigin);
  }, 60_000);

  it('serves the verified domain on both replicas; no host reaches tenant B or its origin', async () => {
    await eventually(
      'both replicas serve the verified custom domain',
      async () => {
        const answers = await Promise.all(replicas.map((r) => r.getHost(ALPHA_DOMAIN, '/svc/ready')));
        return answers.every((a) => a.status === 200 && originOf(a) === 'alpha-origin');
      },
      { system, timeoutMs: 30_000 },
    );
    await eventually(
      'both replicas serve the tenant created last',
      async () => {
        const answers = await Promise.all(replicas.map((r) => r.get('charlie', '/svc/ready')));
        return answers.every((a) => a.status === 200);
      },
      { system, timeoutMs: 30_000 },
    );
    // Both replicas run Bravo's newest config before we look for leaks.
    await eventually(
      "both replicas applied tenant B's newest snapshot",
      async () => {
        const response = await system.admin('GET', `/api/v1/tenants/${bravoId}/rollout`);
        const status = response.body as {
          target_version?: string;
          replicas?: Array<{ replica_id: string; up_to_date: boolean }>;
        };
        return (
          BigInt(status.target_version ?? '0') >= bravoSnapshotPosition &&
          replicas.every((replica) =>
            status.replicas?.some((r) => r.replica_id === replica.id && r.up_to_date),
          )
        );
      },
      { system, timeoutMs: 30_000 },
    );

    const bravoHitsBefore = bravoOrigin.total();
    const secret = 'Bearer alpha-customer-secret';
    for (const replica of replicas) {
      for (const host of [ALPHA_DOMAIN, 'alpha.localhost', 'alpha.vantageedge.dev', 'charlie.localhost']) {
        const response = await replica.getHost(host, '/svc/orders', { authorization: secret });
        expect(response.status, `${replica.id} ${host}: ${response.body}`).toBe(200);
        expect(originOf(response), `${replica.id} ${host}`).toBe('alpha-origin');
      }
      const pending = await replica.getHost('pending.bravo-corp.example', '/svc/orders', {
        authorization: secret,
      });
      expect(pending.status, `${replica.id}: ${pending.body}`).toBe(404);
      expect(JSON.parse(pending.body)).toMatchObject({ error: { code: 'tenant_not_found' } });
      // Bravo's own host still works: isolation, not breakage.
      const own = await replica.get('bravo', '/svc/own');
      expect(originOf(own)).toBe('bravo-origin');
    }
    expect(bravoOrigin.total()).toBe(bravoHitsBefore + replicas.length);
    expect(authorizationSeenBy.get('bravo-origin') ?? []).not.toContain(secret);
    expect(authorizationSeenBy.get('alpha-origin') ?? []).toContain(secret);
  }, 90_000);

  it('stops serving a removed domain on both replicas', async () => {
    const removed = await system.admin('DELETE', `/api/v1/tenants/${alphaId}/domains/${ALPHA_DOMAIN}`);
    expect(removed.status, removed.text).toBe(204);
    await eventually(
      'both replicas drop the removed domain',
      async () => {
        const answers = await Promise.all(replicas.map((r) => r.getHost(ALPHA_DOMAIN, '/svc/gone')));
        return answers.every((a) => a.status === 404);
      },
      { system, timeoutMs: 30_000 },
    );
  }, 60_000);
});
