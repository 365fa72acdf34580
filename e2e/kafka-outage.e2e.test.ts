import { createPrivateKafka, type PrivateKafka } from '@vantageedge/shared/snapshot-bus/private-kafka';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  eventually,
  type GatewayReplica,
  type HttpResponse,
  httpRequest,
  sleep,
  startOrigin,
  stopAllServices,
  type TestOrigin,
  TestSystem,
} from './harness.js';

/**
 * A Kafka outage at system level (the component-level version is
 * services/gateway/src/config-plane/pipeline.e2e.test.ts): every service is its own process on a
 * private Kafka broker, which the test stops and starts. While it is down the gateways keep serving
 * their last config and the admin API keeps accepting commands; when it is back, the change made during
 * the outage reaches both replicas by itself.
 */
const SUBDOMAIN = 'outage';

let kafka: PrivateKafka;
let system: TestSystem;
let originA: TestOrigin;
let originB: TestOrigin;
let replicas: GatewayReplica[] = [];

beforeAll(async () => {
  kafka = await createPrivateKafka();
  [originA, originB] = await Promise.all([
    startOrigin('origin-a'),
    startOrigin('origin-b'),
    kafka.start().then(() => undefined),
  ]);
  system = await TestSystem.create({ kafkaBrokers: kafka.brokers });
  await system.startControlSide();
  replicas = await system.startGateways(2);
}, 240_000);

afterAll(async () => {
  await system?.close();
  await Promise.all([originA?.close(), originB?.close()]);
  await stopAllServices();
  await kafka?.destroy();
}, 60_000);

const originOf = (response: HttpResponse) => response.headers['x-origin'];

describe('Kafka stopped and started under the running system', () => {
  it('gateways keep serving, commands keep working, and the outage change arrives after Kafka returns', async () => {
    const tenant = await system.admin('POST', '/api/v1/tenants', {
      body: { name: 'Outage Corp', subdomain: SUBDOMAIN },
    });
    expect(tenant.status, tenant.text).toBe(201);
    const tenantId = tenant.body['id'] as string;
    const [a, b] = await Promise.all(
      [originA, originB].map((origin) =>
        system.admin('POST', '/api/v1/origins', {
          body: { tenant_id: tenantId, name: origin.name, url: origin.url },
        }),
      ),
    );
    const route = await system.admin('POST', '/api/v1/routes', {
      body: { tenant_id: tenantId, path_pattern: '/svc/*', origin_id: a?.body['id'], auth_mode: 'public' },
    });
    expect(route.status, route.text).toBe(201);
    for (const replica of replicas) {
      await eventually(
        `${replica.id} serves the route`,
        async () => originOf(await replica.get(SUBDOMAIN, '/svc/x')) === 'origin-a',
        { system, timeoutMs: 30_000 },
      );
    }

    await kafka.stop();
    // The admin API does not need Kafka: the change is accepted during the outage.
    const patched = await system.admin('PATCH', `/api/v1/routes/${route.body['id']}`, {
      body: { origin_id: b?.body['id'] },
    });
    expect(patched.status, patched.text).toBe(200);
    // For a few seconds of outage, both replicas keep serving their last config and stay ready.
    const outageUntil = performance.now() + 3_000;
    while (performance.now() < outageUntil) {
      for (const replica of replicas) {
        const response = await replica.get(SUBDOMAIN, '/svc/during-outage');
        expect(response.status, `${replica.id}: ${response.body}`).toBe(200);
        expect(originOf(response)).toBe('origin-a');
      }
      await sleep(200);
    }
    for (const replica of replicas) {
      const ready = await httpRequest(`${replica.adminUrl}/readyz`);
      expect(ready.status, `${replica.id} /readyz during the outage: ${ready.body}`).toBe(200);
    }

    const restartedAt = performance.now();
    await kafka.start();
    const brokerUpMs = performance.now() - restartedAt;
    const times = await Promise.all(
      replicas.map(async (replica) => {
        await eventually(
          `${replica.id} applies the change made during the outage`,
          async () => originOf(await replica.get(SUBDOMAIN, '/svc/after')) === 'origin-b',
          { system, timeoutMs: 120_000, intervalMs: 50 },
        );
        return { id: replica.id, ms: performance.now() - restartedAt };
      }),
    );
    for (const { id, ms } of times) {
      console.info(
        `[e2e] Kafka back (broker up after ${brokerUpMs.toFixed(0)} ms) → ${id} serves the outage's ` +
          `change ${ms.toFixed(0)} ms after the restart began`,
      );
    }
    for (const replica of replicas) {
      expect((await replica.get(SUBDOMAIN, '/svc/final')).status).toBe(200);
    }
  }, 240_000);
});
