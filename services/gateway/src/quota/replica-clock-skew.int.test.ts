import { randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK } from '@vantageedge/shared/net/origin-address-policy';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { parseSettings } from '@vantageedge/shared/settings/load-settings';
import { createInMemorySnapshotBus } from '@vantageedge/shared/snapshot-bus/in-memory-snapshot-bus';
import { configPlaneSettings } from '@vantageedge/shared/snapshot-bus/settings';
import { createTestRedis, type TestRedis } from '@vantageedge/shared/testing/redis';
import { quotaWindows } from '@vantageedge/shared/usage/quota-windows';
import {
  decodeUsageCell,
  hourOf,
  InMemoryUsageBatchStore,
  type UsageBatchStore,
  usageBatchCreatedMs,
} from '@vantageedge/shared/usage/usage-cells';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { gatewaySettings } from '../settings.js';
import { type GatewayReplica, startGatewayReplica } from '../start-gateway-replica.js';
import { startTestOrigin, type TestOrigin } from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';

const DAY_MS = 86_400_000;

function get(port: number, host: string, path: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, headers: { host }, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, ...res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A replica with a tenant under a daily quota, its usage batches in `usageBatches`. */
async function startReplica(
  redis: TestRedis,
  tenantId: string,
  origin: TestOrigin,
  usageBatches: UsageBatchStore,
  options: { subdomain: string; clock?: () => number },
): Promise<GatewayReplica> {
  const originId = randomUUID();
  const snapshot = buildSnapshot({
    tenantId,
    subdomain: options.subdomain,
    origins: [{ id: originId, targets: [origin.url] }],
    routes: [{ path_pattern: '/*', origin_id: originId }],
    settings: { quota: { requests_per_day: 100 } },
  });
  const config = parseSettings(
    { ...configPlaneSettings, ...gatewaySettings },
    {
      GATEWAY_PORT: '0',
      GATEWAY_ADMIN_PORT: '0',
      GATEWAY_HOST: '127.0.0.1',
      API_KEY_PEPPER: 'replica-clock-skew-pepper-0123456789abcdef0123',
      GATEWAY_REDIS_KEY_PREFIX: redis.prefix,
      ROLLOUT_KEY_PREFIX: `${redis.prefix}rollout:`,
      ORIGIN_BLOCKED_CIDRS: ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK.join(','),
    },
  );
  const bus = createInMemorySnapshotBus();
  await bus.publish([{ kind: 'snapshot', tenantId, version: BigInt(snapshot.version), snapshot }]);
  const replica = await startGatewayReplica({
    config,
    bus,
    redis: redis.client,
    usageBatches,
    ...(options.clock ? { clock: options.clock } : {}),
    registry: createMetricsRegistry(`gateway-${options.subdomain}`),
    logger: createLogger({ service: `gateway-${options.subdomain}`, level: 'error' }),
  });
  await replica.configPlane.ready;
  return replica;
}

// Regression test: a replica counted its usage in the hours of its own clock, so one a day ahead put
// its requests into tomorrow's usage while its quota counted them today: a key's usage and quota
// disagreed, and the usage listing showed requests in an hour that had not come.
describe('a replica whose clock is a day and an hour ahead (the real Redis)', () => {
  const redis = createTestRedis('replica-clock-skew');
  const tenantId = randomUUID();
  const usageBatches = new InMemoryUsageBatchStore();
  let origin: TestOrigin;
  let replica: GatewayReplica | undefined;

  beforeAll(async () => {
    origin = await startTestOrigin('replica-clock-origin');
    replica = await startReplica(redis, tenantId, origin, usageBatches, {
      subdomain: 'skewedreplica',
      clock: () => Date.now() + DAY_MS + 3_600_000,
    });
  }, 60_000);

  afterAll(async () => {
    await replica?.close();
    await origin?.close();
    await redis.cleanup();
  });

  it("counts its requests in the quota period and the usage hour of Redis's clock", async () => {
    const port = replica!.gateway.trafficPort;
    const before = Date.now();
    const answers = [
      await get(port, 'skewedreplica.localhost', '/a'),
      await get(port, 'skewedreplica.localhost', '/b'),
    ];
    expect(answers.map((answer) => [answer['status'], answer['x-quota-remaining']])).toEqual([
      [200, '99'],
      [200, '98'],
    ]);
    const today = quotaWindows(redis.prefix, tenantId, { kind: 'tenant' }, { requests_per_day: 100 }, before);
    expect(await redis.client.get(today[0]!.key)).toBe('2');

    await replica!.close(); // writes the last usage batch
    replica = undefined;
    const after = Date.now();
    const hours = new Set<number>();
    for (const id of await usageBatches.list()) {
      for (const [field, requests] of await usageBatches.read(id)) {
        const cell = decodeUsageCell(field);
        if (cell?.tenantId === tenantId) for (let i = 0; i < requests; i++) hours.add(cell.hour);
      }
    }
    expect(hours.size).toBeGreaterThan(0);
    for (const hour of hours) {
      expect(hour).toBeGreaterThanOrEqual(hourOf(before));
      expect(hour).toBeLessThanOrEqual(hourOf(after));
    }
  });
});

// Regression test: a replica named its usage batches by its own clock, and the usage flusher deletes
// unapplied a batch made 13 days or more ago (its id may be forgotten): a replica whose clock was two
// weeks behind had every request it answered left out of usage, with only a warning per batch.
describe('a replica whose own clock is 20 days behind (the real Redis)', () => {
  const redis = createTestRedis('replica-clock-behind');
  const tenantId = randomUUID();
  const usageBatches = new InMemoryUsageBatchStore();
  const realNow = Date.now.bind(Date);
  let origin: TestOrigin;

  beforeAll(async () => {
    origin = await startTestOrigin('replica-clock-behind-origin');
  });

  afterAll(async () => {
    vi.restoreAllMocks();
    await origin?.close();
    await redis.cleanup();
  });

  it("names its usage batches by Redis's clock, so the flusher adds them", async () => {
    const before = realNow();
    // The replica's host clock: everything in the replica that reads the system's time reads this.
    vi.spyOn(Date, 'now').mockImplementation(() => realNow() - 20 * DAY_MS);
    try {
      const replica = await startReplica(redis, tenantId, origin, usageBatches, { subdomain: 'behind' });
      try {
        const answer = await get(replica.gateway.trafficPort, 'behind.localhost', '/a');
        expect(answer['status']).toBe(200);
      } finally {
        await replica.close(); // writes the last usage batch
      }
    } finally {
      vi.restoreAllMocks();
    }
    const after = Date.now();
    const ids = await usageBatches.list();
    expect(ids.length).toBeGreaterThan(0);
    for (const id of ids) {
      const madeAt = usageBatchCreatedMs(id);
      expect(madeAt).toBeGreaterThanOrEqual(before - 1_000);
      expect(madeAt).toBeLessThanOrEqual(after + 1_000);
    }
  }, 60_000);
});
