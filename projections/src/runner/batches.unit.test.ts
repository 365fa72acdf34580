import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { batches } from './batches.js';
import { RoundTripEventStore } from './testing.js';

async function* source(items: number[], pauseAfter: Set<number>) {
  for (const item of items) {
    yield item;
    if (pauseAfter.has(item)) await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

describe('batches', () => {
  it('takes what is already available, up to the maximum, and splits where the source waits', async () => {
    const result = await collect(batches(source([1, 2, 3, 4, 5, 6, 7], new Set([5])), 3));
    expect(result).toEqual([
      [1, 2, 3],
      [4, 5],
      [6, 7],
    ]);
  });

  it('ends with the source and loses nothing', async () => {
    const items = Array.from({ length: 1000 }, (_, i) => i);
    const result = await collect(batches(source(items, new Set()), 64));
    expect(result.flat()).toEqual(items);
    expect(Math.max(...result.map((b) => b.length))).toBe(64);
  });

  it('passes a failure of the source on', async () => {
    async function* failing() {
      yield 1;
      throw new Error('connection lost');
    }
    await expect(collect(batches(failing(), 10))).rejects.toThrow('connection lost');
  });
});

function change(store: RoundTripEventStore, stream: string) {
  return store.appendToStream(stream, [
    {
      type: 'TenantRenamed',
      data: { name: stream },
      metadata: {
        actor: 'test',
        tenant_id: null,
        correlation_id: randomUUID(),
        causation_id: null,
        occurred_at: new Date().toISOString(),
        schema_version: 1,
      },
    },
  ]);
}

describe('batches of a store subscription', () => {
  it('puts a change committed while a batch is applied into the next batch, not the one after', async () => {
    const store = new RoundTripEventStore();
    await change(store, 'tenant-a-1');
    const subscription = store.subscribeToAll();
    const applied: string[][] = [];
    for await (const batch of batches(subscription, 100)) {
      applied.push(batch.map((event) => event.stream));
      if (applied.length === 1) {
        // While this batch is applied (a large tenant's snapshot stored), that tenant changes again and
        // the subscription reads the change at once; then another tenant changes, still meanwhile.
        const next = await change(store, 'tenant-a-2');
        await store.untilRead(next.position);
        await change(store, 'tenant-b-1');
      }
      if (applied.flat().includes('tenant-b-1') || applied.length === 3) break;
    }
    await subscription.close();
    expect(applied).toEqual([['tenant-a-1'], ['tenant-a-2', 'tenant-b-1']]);
  });
});
