import {
  decodeUsageCell,
  InMemoryUsageBatchStore,
  type UsageCounts,
} from '@vantageedge/shared/usage/usage-cells';
import { describe, expect, it } from 'vitest';
import type { GatewayExchange } from '../pipeline/exchange.js';
import { UsageRecorder } from './usage-recorder.js';

const TENANT = '6f1c1f3e-7c0e-4a51-9d4e-0b8f2f6f0a11';
const HOUR = Date.UTC(2026, 10, 30, 16, 0, 0);

function exchange(routeId: string | undefined, identity: Partial<GatewayExchange['identity']> = {}) {
  return {
    tenant: { id: TENANT },
    route: routeId === undefined ? undefined : { config: { id: routeId } },
    identity: { kind: 'anonymous', scopes: [], ...identity },
  } as unknown as GatewayExchange;
}

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

async function totals(store: InMemoryUsageBatchStore): Promise<Map<string, number>> {
  const sums = new Map<string, number>();
  for (const id of await store.list()) {
    for (const [field, requests] of await store.read(id)) {
      const cell = decodeUsageCell(field)!;
      const key = `${cell.routeId || '-'} ${cell.apiKeyId || '-'} ${cell.userId || '-'} ${cell.statusClass}`;
      sums.set(key, (sums.get(key) ?? 0) + requests);
    }
  }
  return sums;
}

describe('the usage recorder', () => {
  it('counts answered requests per route, key, user and status class; not unanswered ones', async () => {
    const store = new InMemoryUsageBatchStore();
    const recorder = new UsageRecorder({
      batches: store,
      replicaId: 'r1',
      intervalMs: 60_000,
      clock: () => HOUR,
    });
    recorder.record(exchange('route-a'), 200);
    recorder.record(exchange('route-a'), 204);
    recorder.record(exchange('route-a', { kind: 'api_key', apiKeyId: 'key-1' }), 429);
    recorder.record(exchange('route-b', { kind: 'user', userId: 'user_1' }), 503);
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

  it('keeps a batch the store refused and writes it again under the same id, never twice', async () => {
    const store = new FlakyStore(1);
    const recorder = new UsageRecorder({
      batches: store,
      replicaId: 'r1',
      intervalMs: 60_000,
      clock: () => HOUR,
    });
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
    const recorder = new UsageRecorder({
      batches: store,
      replicaId: 'r1',
      intervalMs: 60_000,
      clock: () => HOUR,
    });
    recorder.record(exchange('route-a'), 200);
    await recorder.flush(); // refused: kept
    recorder.record(exchange('route-a'), 500);
    await recorder.close();
    expect(await totals(store)).toEqual(
      new Map([
        ['route-a - - 2xx', 1],
        ['route-a - - 5xx', 1],
      ]),
    );
  });
});
