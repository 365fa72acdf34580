import { randomUUID } from 'node:crypto';
import { InMemoryQuotaStore, type QuotaStore } from '@vantageedge/shared/usage/quota-store';
import type { QuotaDecision } from '@vantageedge/shared/usage/quota-windows';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TenantLimitCalls } from '../ratelimit/tenant-limit-calls.js';
import {
  type GatewayResponse,
  send,
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { createQuotaStage } from './quota-stage.js';

/**
 * Quota checks go down the replica's Redis connection with every tenant's rate-limit checks, answered in
 * order: a tenant whose clients hold many metered requests open at once must not put all of their calls
 * ahead of everyone's. Its calls share its turns on that connection with its rate-limit calls
 * (TenantLimitCalls: a small share here, so the test counts a few requests).
 */
const SHARE = 4;
const QUEUE = 8;

describe("a tenant's quota calls on the shared store", () => {
  let origin: TestOrigin;
  let gateway: TestGateway;
  const held: Array<{ key: string; answer: () => void }> = [];
  const memory = new InMemoryQuotaStore();
  const store: QuotaStore = {
    consume(windows) {
      return new Promise<QuotaDecision>((resolve, reject) => {
        held.push({
          key: windows[0]!.key,
          answer: () => memory.consume(windows).then(resolve, reject),
        });
      });
    },
    read: (windows) => memory.read(windows),
  };
  const hostileId = randomUUID();
  const otherId = randomUUID();

  beforeAll(async () => {
    origin = await startTestOrigin('tenant-quota-calls-origin');
    const tenantCalls = new TenantLimitCalls(SHARE, QUEUE);
    gateway = await startTestGateway(
      {},
      { stages: [createQuotaStage({ store, keyPrefix: 'tqc:', tenantCalls: () => tenantCalls })] },
    );
    for (const [tenantId, subdomain] of [
      [hostileId, 'flooding'],
      [otherId, 'other'],
    ] as const) {
      const originId = randomUUID();
      gateway.store.apply(
        buildSnapshot({
          tenantId,
          subdomain,
          origins: [{ id: originId, targets: [origin.url] }],
          routes: [{ path_pattern: '/open/*', origin_id: originId }],
          settings: { quota: { requests_per_day: 1_000 } },
        }),
      );
    }
  });

  afterAll(async () => {
    for (const call of held) call.answer();
    await gateway?.close();
    await origin?.close();
  });

  const callsOf = (tenantId: string) => held.filter((call) => call.key.includes(tenantId)).length;
  const until = async (done: () => boolean) => {
    for (let attempt = 0; attempt < 200 && !done(); attempt++) await new Promise((r) => setTimeout(r, 25));
  };

  it("sends at most the tenant's share of calls at once, and another tenant's call beside them", async () => {
    const flood = 20;
    const settled: GatewayResponse[] = [];
    const flooding: Array<Promise<GatewayResponse>> = [];
    for (let i = 0; i < flood; i++) {
      const response = send(gateway, 'flooding.localhost', `/open/${i}`);
      void response.then((answer) => settled.push(answer));
      flooding.push(response);
    }
    // Those past the share and its queue are refused at once: served, they would go uncounted.
    await until(() => settled.length >= flood - SHARE - QUEUE);
    expect(settled.map((response) => response.status)).toEqual(Array(flood - SHARE - QUEUE).fill(503));
    for (const refused of settled) {
      expect(refused.json()).toMatchObject({ error: { code: 'limit_checks_busy' } });
      expect(refused.headers['retry-after']).toBe('1');
    }
    expect(origin.seen.filter((seen) => seen.headers.host === 'flooding.localhost')).toEqual([]);
    expect(callsOf(hostileId)).toBe(SHARE);

    const other = send(gateway, 'other.localhost', '/open/x');
    await until(() => callsOf(otherId) === 1);
    expect(callsOf(otherId)).toBe(1);
    expect(held.findIndex((call) => call.key.includes(otherId))).toBe(SHARE);
    held[SHARE]!.answer();
    expect((await other).headers['x-quota-remaining']).toBe('999');

    // The waiting calls go as earlier ones answer, never more than the share at once.
    let answered = 0;
    while (answered < SHARE + QUEUE) {
      const next = held.filter((call) => call.key.includes(hostileId))[answered]!;
      next.answer();
      answered++;
      await until(() => callsOf(hostileId) >= Math.min(SHARE + answered, SHARE + QUEUE));
      expect(callsOf(hostileId) - answered).toBeLessThanOrEqual(SHARE);
    }
    const all = await Promise.all(flooding);
    expect(all.filter((response) => response.headers['x-quota-remaining'] !== undefined)).toHaveLength(
      SHARE + QUEUE,
    );
    expect(callsOf(hostileId)).toBe(SHARE + QUEUE);
  });
});
