import { describe, expect, it } from 'vitest';
import { type StoreSlot, TenantStoreSlots } from './tenant-store-slots.js';

const MiB = 1024 * 1024;

function admitted(slot: StoreSlot | Promise<StoreSlot> | null): StoreSlot {
  if (slot === null || slot instanceof Promise) throw new Error('the call should have a slot at once');
  return slot;
}

describe('a tenant’s share of the replica’s store calls', () => {
  const slots = () =>
    new TenantStoreSlots({ maxCalls: 8, maxBytes: 4 * MiB, unknownReadBytes: 2 * MiB, maxQueued: 2 });

  it('a tenant whose reads were large gets fewer at once; another tenant is not held up by it', () => {
    const shared = slots();
    const first = admitted(shared.acquire('large'));
    admitted(shared.acquire('large'));
    const waiting = shared.acquire('large');
    expect(waiting).toBeInstanceOf(Promise);
    first.release(1_900_000);
    // The other tenant's first reads are admitted whatever the large tenant has in flight.
    admitted(shared.acquire('small'));
    admitted(shared.acquire('small'));
  });

  it('a tenant whose reads were small gets as many calls as allowed', () => {
    const shared = slots();
    for (let i = 0; i < 4; i++) admitted(shared.acquire('small')).release(2_000);
    const inFlight = Array.from({ length: 8 }, () => admitted(shared.acquire('small')));
    expect(shared.acquire('small')).toBeInstanceOf(Promise);
    for (const slot of inFlight) slot.release(2_000);
  });

  it('waiting calls are admitted in order as calls end; past the queue the tenant’s call is refused', async () => {
    const shared = slots();
    const first = admitted(shared.acquire('large', 3 * MiB));
    const second = shared.acquire('large', 3 * MiB);
    const third = shared.acquire('large', 100);
    expect(shared.acquire('large', 100)).toBeNull();
    expect(shared.acquire('other', 3 * MiB)).not.toBeNull();
    const order: string[] = [];
    void Promise.resolve(second).then(() => order.push('second'));
    void Promise.resolve(third).then(() => order.push('third'));
    first.release();
    const [secondSlot, thirdSlot] = await Promise.all([second, third]);
    expect(order).toEqual(['second', 'third']);
    secondSlot?.release();
    thirdSlot?.release();
  });
});
