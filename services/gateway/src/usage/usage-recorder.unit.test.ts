import { StoreClock } from '@vantageedge/shared/usage/store-clock';
import {
  InMemoryUsageBatchStore,
  OVERFLOW_ID,
  type UsageCounts,
  usageBatchCreatedMs,
} from '@vantageedge/shared/usage/usage-cells';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { apiKeyIdentity, clerkUserIdentity, oidcUserIdentity, serviceIdentity } from '../auth/identity.js';
import { countOnlyTenantsIn, removeTenantSeries } from '../observability/bound-metrics.js';
import type { GatewayExchange } from '../pipeline/exchange.js';
import { UsageRecorder, type UsageRecorderOptions } from './usage-recorder.js';

const TENANT = '6f1c1f3e-7c0e-4a51-9d4e-0b8f2f6f0a11';
const OTHER_TENANT = '0d9e8a47-3b1f-4c2e-8f6a-5e4d3c2b1a00';
const HOUR = Date.UTC(2026, 10, 30, 16, 0, 0);
const DAY_MS = 86_400_000;

function exchange(
  routeId: string | undefined,
  identity: Partial<GatewayExchange['identity']> = {},
  tenantId = TENANT,
) {
  return {
    tenant: { id: tenantId },
    route: routeId === undefined ? undefined : { config: { id: routeId } },
    identity: { kind: 'anonymous', scopes: [], ...identity },
  } as unknown as GatewayExchange;
}

const clerkUser = (id: string) => clerkUserIdentity(id, undefined, []);
const apiKey = (id: string) => apiKeyIdentity(id, []);

/** A batch store that refuses the first `failures` writes. */
class FlakyStore extends InMemoryUsageBatchStore {
  writes: string[] = [];
  constructor(private failures: number) {
    super();
  }
  override async write(batchId: string, counts: UsageCounts): Promise<void> {
    this.writes.push(batchId);
    if (this.failures > 0) {
      this.failures -= 1;
      throw new Error('Redis is down');
    }
    await super.write(batchId, counts);
  }
}

async function totals(store: InMemoryUsageBatchStore, tenantId = TENANT): Promise<Map<string, number>> {
  const sums = new Map<string, number>();
  for (const id of await store.list()) {
    for (const [field, requests] of await store.read(id)) {
      // The fields as the recorder wrote them (decodeUsageCell would count these tests' route and key
      // ids, which are no uuids, as OVERFLOW_ID).
      const [cellTenant, routeId, apiKeyId, userId, statusClass] = field.split('\u001f');
      if (cellTenant !== tenantId) continue;
      const key = `${routeId || '-'} ${apiKeyId || '-'} ${userId || '-'} ${statusClass}`;
      sums.set(key, (sums.get(key) ?? 0) + requests);
    }
  }
  return sums;
}

/** A recorder of replica r1 that `store` keeps the batches of, at HOUR; each test flushes it itself. */
function recorderOn(
  store: InMemoryUsageBatchStore,
  options: Partial<UsageRecorderOptions> = {},
): UsageRecorder {
  return new UsageRecorder({
    batches: store,
    replicaId: 'r1',
    intervalMs: 60_000,
    clock: () => HOUR,
    ...options,
  });
}

/** Counts a 2xx, flushes (a batch the store refuses is kept), counts a 5xx, then closes the recorder. */
async function closeAfterARefusedFlush(recorder: UsageRecorder): Promise<void> {
  recorder.record(exchange('route-a'), 200);
  await recorder.flush();
  recorder.record(exchange('route-a'), 500);
  await recorder.close();
}

const sum = (counts: Map<string, number>): number => [...counts.values()].reduce((a, b) => a + b, 0);

/** The value of a counter or gauge series in the registry (0 when the series does not exist). */
async function metric(registry: Registry, name: string, labels: Record<string, string> = {}) {
  const found = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
  const value = found?.values.find((v) =>
    Object.entries(labels).every(([label, wanted]) => String(v.labels[label]) === wanted),
  );
  return value?.value ?? 0;
}

describe('the usage recorder', () => {
  it('counts answered requests per route, key, user and status class; not unanswered ones', async () => {
    const store = new InMemoryUsageBatchStore();
    const recorder = recorderOn(store);
    recorder.record(exchange('route-a'), 200);
    recorder.record(exchange('route-a'), 204);
    recorder.record(exchange('route-a', apiKey('key-1')), 429);
    recorder.record(exchange('route-b', clerkUser('user_1')), 503);
    recorder.record(exchange(undefined), 404);
    recorder.record(exchange('route-a'), 0); // the client left before any answer
    recorder.record({ ...exchange('route-a'), tenant: undefined } as GatewayExchange, 404); // no tenant
    await recorder.flush();
    expect(await totals(store)).toEqual(
      new Map([
        ['route-a - - 2xx', 2],
        ['route-a key-1 - 4xx', 1],
        ['route-b - user_1 5xx', 1],
        ['- - - 4xx', 1],
      ]),
    );
  });

  it("counts each request in its own cell when one route's requests alternate keys, users, statuses and hours", async () => {
    const store = new InMemoryUsageBatchStore();
    let now = HOUR;
    const recorder = recorderOn(store, {
      clock: () => now,
    });
    // One compiled tenant and route, as every request of one snapshot shares them.
    const tenant = { id: TENANT };
    const route = { config: { id: 'route-a' } };
    const on = (identity: Partial<GatewayExchange['identity']>) =>
      ({
        tenant,
        route,
        identity: { kind: 'anonymous', scopes: [], ...identity },
      }) as unknown as GatewayExchange;
    const routeless = {
      tenant,
      route: undefined,
      identity: { kind: 'anonymous', scopes: [] },
    } as unknown as GatewayExchange;
    for (let i = 0; i < 3; i++) {
      recorder.record(on(apiKey('key-1')), 200);
      recorder.record(on(apiKey('key-2')), 200);
      recorder.record(on(apiKey('key-2')), 500);
      recorder.record(on(clerkUser('user_1')), 200);
      recorder.record(routeless, 404);
    }
    now = HOUR + 3_600_000;
    recorder.record(on(apiKey('key-1')), 200);
    await recorder.flush();
    const byHour = new Map<string, number>();
    for (const id of await store.list()) {
      for (const [field, requests] of await store.read(id)) {
        const [, routeId, apiKeyId, userId, statusClass, hour] = field.split('\u001f');
        const key = `${routeId || '-'} ${apiKeyId || '-'} ${userId || '-'} ${statusClass} ${Number(hour) * 1000 - HOUR}`;
        byHour.set(key, (byHour.get(key) ?? 0) + requests);
      }
    }
    expect(byHour).toEqual(
      new Map([
        ['route-a key-1 - 2xx 0', 3],
        ['route-a key-2 - 2xx 0', 3],
        ['route-a key-2 - 5xx 0', 3],
        ['route-a - user_1 2xx 0', 3],
        ['- - - 4xx 0', 3],
        ['route-a key-1 - 2xx 3600000', 1],
      ]),
    );
  });

  it('regression: counts a Clerk user, an OIDC subject and a calling service with one id apart', async () => {
    const store = new InMemoryUsageBatchStore();
    const recorder = recorderOn(store);
    recorder.record(exchange('route-a', clerkUser('user_2victim')), 200);
    recorder.record(exchange('route-a', oidcUserIdentity('https://idp.test', 'user_2victim', [])), 200);
    recorder.record(exchange('route-a', oidcUserIdentity('https://idp.test', 'user_2victim', [])), 200);
    recorder.record(exchange('route-a', serviceIdentity('user_2victim', [])), 200);
    recorder.record(exchange('route-a', oidcUserIdentity('https://idp.test', OVERFLOW_ID, [])), 200);
    await recorder.flush();
    const counted = await totals(store);
    // A Clerk user keeps its bare id (what the usage API shows and filters); the others their principal.
    expect(counted.get('route-a - user_2victim 2xx')).toBe(1);
    const others = [...counted].filter(([cell]) => cell !== 'route-a - user_2victim 2xx');
    expect(others).toEqual([
      [expect.stringMatching(/^route-a - oidc:[\w-]{16}:user_2victim 2xx$/), 2],
      ['route-a - svc:user_2victim 2xx', 1],
      // An OIDC subject `*` is no overflow.
      [expect.stringMatching(/^route-a - oidc:[\w-]{16}:\* 2xx$/), 1],
    ]);
  });

  it('keeps a batch the store refused and writes it again under the same id, never twice', async () => {
    const store = new FlakyStore(1);
    const recorder = recorderOn(store);
    recorder.record(exchange('route-a'), 200);
    await recorder.flush(); // refused
    recorder.record(exchange('route-a'), 200);
    await recorder.flush(); // the kept batch again
    await recorder.flush(); // then the new counts
    expect(store.writes[0]).toBe(store.writes[1]);
    expect(store.writes).toHaveLength(3);
    expect(await totals(store)).toEqual(new Map([['route-a - - 2xx', 2]]));
  });

  it('writes what it counted when it is closed (a graceful stop loses nothing)', async () => {
    const store = new FlakyStore(1);
    await closeAfterARefusedFlush(recorderOn(store));
    expect(await totals(store)).toEqual(
      new Map([
        ['route-a - - 2xx', 1],
        ['route-a - - 5xx', 1],
      ]),
    );
  });

  it('regression: a graceful stop through a Redis blip writes every batch once Redis answers again', async () => {
    // Redis refuses the periodic flush and the stop's first writes (a failover during a rollout).
    const store = new FlakyStore(4);
    await closeAfterARefusedFlush(recorderOn(store, { closeRetryIntervalMs: 1 }));
    expect(await totals(store)).toEqual(
      new Map([
        ['route-a - - 2xx', 1],
        ['route-a - - 5xx', 1],
      ]),
    );
    // The kept batch always under its own id: never a second id for the same counts.
    expect(new Set(store.writes).size).toBe(2);
  });

  it("regression: a replica that starts while Redis is down names its first batch by Redis's clock once it reads it, not by its own", async () => {
    // The replica's own clock is 20 days behind; Redis (and its TIME) answer nothing yet.
    const redisNow = HOUR;
    const clock = new StoreClock(() => redisNow - 20 * DAY_MS);
    await clock.sync(() => Promise.reject(new Error('Redis is down'))).catch(() => undefined);
    const store = new FlakyStore(1);
    const recorder = recorderOn(store, { clock: clock.now, clockKnown: () => clock.known });
    recorder.record(exchange('route-a'), 200);
    await recorder.flush(); // Redis still down
    // Redis is back: the replica reads its clock, then writes what it held.
    await clock.sync(() => Promise.resolve(redisNow));
    await recorder.flush();
    await recorder.flush();
    const ids = await store.list();
    expect(ids).toHaveLength(1);
    // The flusher measures a batch's age on Redis's clock and deletes one 13 days old unapplied.
    expect(redisNow - usageBatchCreatedMs(ids[0]!)!).toBeLessThan(DAY_MS);
    expect(await totals(store)).toEqual(new Map([['route-a - - 2xx', 1]]));
  });

  it('names a batch by its own clock at a stop when Redis never gave its time, rather than losing it', async () => {
    const store = new InMemoryUsageBatchStore();
    const recorder = recorderOn(store, { clockKnown: () => false });
    recorder.record(exchange('route-a'), 200);
    await recorder.flush(); // not named yet: the clock is not Redis's
    expect(await store.list()).toEqual([]);
    await recorder.close();
    expect(await totals(store)).toEqual(new Map([['route-a - - 2xx', 1]]));
  });

  it('gives up a stop Redis keeps refusing after its time, and says how many requests it could not write', async () => {
    const store = new FlakyStore(Number.POSITIVE_INFINITY);
    const logged: Array<{ message: string; fields: Record<string, unknown> | undefined }> = [];
    const logger = {
      info: () => {},
      warn: () => {},
      error: (message: string, fields?: Record<string, unknown>) => logged.push({ message, fields }),
    };
    const recorder = recorderOn(store, {
      logger,
      closeTimeoutMs: 20,
      closeRetryIntervalMs: 1,
    });
    recorder.record(exchange('route-a'), 200);
    await recorder.flush(); // refused: kept
    recorder.record(exchange('route-a'), 200);
    recorder.record(exchange('route-b'), 404);
    await recorder.close();
    expect(await store.list()).toEqual([]);
    expect(logged).toEqual([
      {
        message: 'usage counts not written at shutdown: the batch store refused them',
        fields: expect.objectContaining({ requests: 3 }),
      },
    ]);
  });
});

describe('the usage recorder’s cardinality limits', () => {
  it('counts the users of a tenant past its limit in the overflow user of their own cells; totals stay exact', async () => {
    const store = new InMemoryUsageBatchStore();
    const registry = new Registry();
    const recorder = recorderOn(store, {
      registry,
      maxUsersPerTenant: 3,
    });
    // 100 distinct users, 2 requests each (a tenant's own OIDC issuer can mint a token per request).
    for (let i = 0; i < 100; i++) {
      recorder.record(exchange('route-a', clerkUser(`sub-${i}`)), 200);
      recorder.record(exchange('route-a', clerkUser(`sub-${i}`)), 404);
    }
    recorder.record(exchange('route-a', clerkUser('sub-1')), 200); // admitted before the limit
    recorder.record(exchange('route-a'), 200); // no user: not one of the 3
    // Another tenant's users are its own: it gets its 3 whatever the first did.
    for (const user of ['ann', 'bob', 'cy']) {
      recorder.record(exchange('route-b', clerkUser(user), OTHER_TENANT), 200);
    }
    await recorder.flush();

    const mine = await totals(store);
    expect(mine).toEqual(
      new Map([
        ['route-a - sub-0 2xx', 1],
        ['route-a - sub-0 4xx', 1],
        ['route-a - sub-1 2xx', 2],
        ['route-a - sub-1 4xx', 1],
        ['route-a - sub-2 2xx', 1],
        ['route-a - sub-2 4xx', 1],
        [`route-a - ${OVERFLOW_ID} 2xx`, 97],
        [`route-a - ${OVERFLOW_ID} 4xx`, 97],
        ['route-a - - 2xx', 1],
      ]),
    );
    expect(sum(mine)).toBe(202);
    expect(await totals(store, OTHER_TENANT)).toEqual(
      new Map([
        ['route-b - ann 2xx', 1],
        ['route-b - bob 2xx', 1],
        ['route-b - cy 2xx', 1],
      ]),
    );
    expect(
      await metric(registry, 'vantageedge_gateway_usage_overflow_requests_total', {
        tenant: TENANT,
        reason: 'users',
      }),
    ).toBe(194);
    expect(
      await metric(registry, 'vantageedge_gateway_usage_overflow_requests_total', { tenant: OTHER_TENANT }),
    ).toBe(0);
  });

  // Regression: the limits were per batch (one flush interval), so a tenant's issuer minting a new `sub`
  // per request named GATEWAY_USAGE_MAX_USERS_PER_TENANT new users every 5 s: 720 times that a replica
  // hour, each a row of usage_counts in the one PostgreSQL every tenant shares.
  it('regression: bounds a tenant’s users and cells per hour, not per flush: new ids every batch go to *', async () => {
    const store = new InMemoryUsageBatchStore();
    let now = HOUR;
    const recorder = recorderOn(store, {
      clock: () => now,
      maxUsersPerTenant: 3,
      maxCellsPerTenant: 5,
    });
    for (let batch = 0; batch < 10; batch++) {
      for (let i = 0; i < 3; i++) recorder.record(exchange('route-a', clerkUser(`sub-${batch}-${i}`)), 200);
      recorder.record(exchange(`route-${batch}`), 200);
      await recorder.flush();
    }
    const hour = await totals(store);
    expect(sum(hour)).toBe(40);
    const users = new Set([...hour.keys()].map((key) => key.split(' ')[2]));
    expect([...users].filter((user) => user !== OVERFLOW_ID && user !== '-')).toHaveLength(3);
    expect(hour.size, 'cells a tenant named in one hour').toBeLessThanOrEqual(5 + 1);
    // A user named earlier in the hour keeps its own cell in the next batches.
    recorder.record(exchange('route-a', clerkUser('sub-0-0')), 200);
    await recorder.flush();
    expect((await totals(store)).get('route-a - sub-0-0 2xx')).toBe(2);
    // The next hour starts afresh.
    now = HOUR + 3_600_000;
    recorder.record(exchange('route-a', clerkUser('sub-next-hour')), 200);
    await recorder.flush();
    expect((await totals(store)).get('route-a - sub-next-hour 2xx')).toBe(1);
  });

  // Regression: the tenant's overflow series, looked up once an hour and kept, was the one its removal
  // took from /metrics (or, looked up by a request ending after the removal, one never exported): the
  // tenant added back within that hour overflowed in no series /metrics showed until the next hour.
  it('exports a tenant’s overflow again when it is added back within the hour it was removed', async () => {
    const registry = new Registry();
    const recorder = recorderOn(new InMemoryUsageBatchStore(), { registry, maxUsersPerTenant: 1 });
    const users = () =>
      metric(registry, 'vantageedge_gateway_usage_overflow_requests_total', {
        tenant: TENANT,
        reason: 'users',
      });
    recorder.record(exchange('route-a', clerkUser('ann')), 200);
    recorder.record(exchange('route-a', clerkUser('bob')), 200);
    expect(await users()).toBe(1);

    // Removed: its series leave /metrics, and a request of it ending now makes none.
    removeTenantSeries(registry, TENANT);
    countOnlyTenantsIn(registry, (tenant) => tenant !== TENANT);
    recorder.record(exchange('route-a', clerkUser('cy')), 200);
    expect(await users()).toBe(0);

    // Added back: its users past the hour's limit are seen again.
    countOnlyTenantsIn(registry, () => true);
    recorder.record(exchange('route-a', clerkUser('dan')), 200);
    recorder.record(exchange('route-a', clerkUser('eve')), 200);
    expect(await users()).toBe(2);

    // Removed while its overflow series is looked up, then added back.
    removeTenantSeries(registry, TENANT);
    countOnlyTenantsIn(registry, () => true);
    recorder.record(exchange('route-a', clerkUser('fay')), 200);
    expect(await users()).toBe(1);
    await recorder.close();
  });

  it('counts user ids that cannot be stored as they are (NUL, too long) as the overflow user', async () => {
    const store = new InMemoryUsageBatchStore();
    const recorder = recorderOn(store);
    recorder.record(exchange('route-a', clerkUser('evil\u0000')), 200);
    recorder.record(exchange('route-a', clerkUser('x'.repeat(10_000))), 200);
    recorder.record(exchange('route-a', clerkUser('a\u001fb')), 200);
    await recorder.flush();
    expect(await totals(store)).toEqual(new Map([[`route-a - ${OVERFLOW_ID} 2xx`, 3]]));
  });

  it('bounds a tenant’s cells to its share and the batch to its limit: past them one overflow cell per status class and hour', async () => {
    const store = new InMemoryUsageBatchStore();
    const registry = new Registry();
    const recorder = recorderOn(store, {
      registry,
      maxCells: 6,
      maxCellsPerTenant: 4,
    });
    // Many routes × keys (both within the tenant's own limits) would be many cells.
    for (let route = 0; route < 20; route++) {
      for (let key = 0; key < 5; key++) {
        recorder.record(exchange(`route-${route}`, apiKey(`key-${key}`)), 200);
      }
    }
    recorder.record(exchange('route-0', apiKey('key-0')), 503);
    for (const route of ['r1', 'r2', 'r3']) recorder.record(exchange(route, {}, OTHER_TENANT), 200);
    await recorder.flush();

    const mine = await totals(store);
    expect(mine.size).toBe(6); // its 4 cells and the overflow cell of each status class
    expect(mine.get(`${OVERFLOW_ID} ${OVERFLOW_ID} ${OVERFLOW_ID} 2xx`)).toBe(96);
    expect(mine.get(`${OVERFLOW_ID} ${OVERFLOW_ID} ${OVERFLOW_ID} 5xx`)).toBe(1);
    expect(sum(mine)).toBe(101);
    // The other tenant had 2 of the batch's 6 cells left: its third route overflows, its total does not.
    expect(await totals(store, OTHER_TENANT)).toEqual(
      new Map([
        ['r1 - - 2xx', 1],
        ['r2 - - 2xx', 1],
        [`${OVERFLOW_ID} ${OVERFLOW_ID} ${OVERFLOW_ID} 2xx`, 1],
      ]),
    );
    expect(
      await metric(registry, 'vantageedge_gateway_usage_overflow_requests_total', {
        tenant: TENANT,
        reason: 'cells',
      }),
    ).toBe(97);
  });

  it('keeps what it holds bounded while Redis is down, and writes the exact totals when it is back', async () => {
    const store = new FlakyStore(40);
    const registry = new Registry();
    let now = HOUR;
    const recorder = recorderOn(store, {
      clock: () => now,
      registry,
      maxUsersPerTenant: 10,
      maxCells: 50,
      maxCellsPerTenant: 30,
    });
    let sent = 0;
    let most = 0;
    for (let round = 0; round < 40; round++) {
      // 500 new users per flush interval, and the hours go by (a long outage).
      for (let i = 0; i < 500; i++) {
        recorder.record(exchange('route-a', clerkUser(`u-${round}-${i}`)), 200);
        sent += 1;
      }
      now += 20 * 60_000;
      await recorder.flush(); // refused
      most = Math.max(most, await metric(registry, 'vantageedge_gateway_usage_cells'));
    }
    // The batch kept for retry and the one counted into, each within its limits (50 cells, and at
    // most one overflow cell per tenant, status class and hour).
    expect(most).toBeGreaterThan(0);
    expect(most).toBeLessThanOrEqual(2 * (50 + 14));
    await recorder.close(); // Redis answers again
    const written = await totals(store);
    expect(sum(written)).toBe(sent);
    // What reached the store (and PostgreSQL after it) is as bounded: 2 batches within their limits.
    let cells = 0;
    for (const id of await store.list()) cells += (await store.read(id)).size;
    expect(store.writes.length - 40).toBe(2);
    expect(cells).toBeLessThanOrEqual(2 * (50 + 14));
    expect(await metric(registry, 'vantageedge_gateway_usage_dropped_requests_total')).toBe(0);
    expect(await metric(registry, 'vantageedge_gateway_usage_cells')).toBe(0);
  });
});
