import { randomUUID } from 'node:crypto';
import { createRedisClient, type RedisClient, whenReady } from '@vantageedge/shared/redis/client';
import {
  type PrivateRedisServer,
  startPrivateRedisServer,
} from '@vantageedge/shared/redis/private-redis-server';
import { type QuotaStore, RedisQuotaStore } from '@vantageedge/shared/usage/quota-store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  send,
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { createQuotaStage } from './quota-stage.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Regression test: the quota stage called Redis for every metered request whatever Redis's state. While
 * Redis stalled (CLIENT PAUSE here; a partitioned master, a server swapping), every request of a tenant
 * with a quota waited a whole command timeout and left one more command queued on the connection, while
 * the rate limiter and the cache, behind their circuits, had stopped calling it.
 */
describe('the quota stage on a stalled Redis (private redis-server)', () => {
  let server: PrivateRedisServer;
  let client: RedisClient;
  let admin: RedisClient;
  let origin: TestOrigin;
  let gateway: TestGateway;
  let calls = 0;

  beforeAll(async () => {
    server = await startPrivateRedisServer();
    client = createRedisClient({ url: server.url, commandTimeoutMs: 50, name: 'replica' });
    admin = createRedisClient({ url: server.url, commandTimeoutMs: 5_000, name: 'admin' });
    await Promise.all([whenReady(client), whenReady(admin)]);
    const redisQuotas = new RedisQuotaStore(client);
    const counted: QuotaStore = {
      consume(windows) {
        calls++;
        return redisQuotas.consume(windows);
      },
      read: (windows) => redisQuotas.read(windows),
    };
    origin = await startTestOrigin('quota-stall-origin');
    gateway = await startTestGateway(
      {},
      { stages: [createQuotaStage({ store: counted, keyPrefix: 'stall:' })] },
    );
    const originId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        subdomain: 'metered',
        origins: [{ id: originId, targets: [origin.url] }],
        routes: [{ path_pattern: '/open/*', origin_id: originId }],
        settings: { quota: { requests_per_day: 1_000 } },
      }),
    );
  });

  afterAll(async () => {
    await gateway?.close();
    await origin?.close();
    client?.disconnect();
    admin?.disconnect();
    await server?.stop();
  });

  it('stops sending every metered request to a stalled Redis, serves them uncounted, and counts again once it answers', async () => {
    const first = await send(gateway, 'metered.localhost', '/open/1');
    expect(first.headers['x-quota-remaining']).toBe('999');

    // Every command waits until the pause ends (CLIENT UNPAUSE would wait too).
    void admin.call('CLIENT', 'PAUSE', '2500', 'ALL');
    await sleep(50);
    calls = 0;
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++)
      statuses.push((await send(gateway, 'metered.localhost', `/open/${i}`)).status);
    const callsWhileStalled = calls;
    console.log(`[quota stall] store calls for 30 requests while Redis stalled: ${callsWhileStalled}`);

    // Fail-open, as documented: every request served.
    expect(statuses.every((status) => status === 200)).toBe(true);
    // A few calls open the circuit (and at most a trial per second after it), not one per request.
    expect(callsWhileStalled).toBeLessThanOrEqual(8);

    let counted: string | undefined;
    for (let attempt = 0; attempt < 100 && counted === undefined; attempt++) {
      await sleep(100);
      counted = (await send(gateway, 'metered.localhost', '/open/again')).headers['x-quota-remaining'] as
        | string
        | undefined;
    }
    expect(counted).toBeDefined();
  });
});
