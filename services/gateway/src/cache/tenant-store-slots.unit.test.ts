import { describe, expect, it } from 'vitest';
import { type StoreSlot, TenantStoreSlots, type TenantStoreSlotsOptions } from './tenant-store-slots.js';

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

  it('a new tenant whose entries are small gets its reads at once; one whose reads are large is still held to its bytes', () => {
    const shared = slots();
    for (let i = 0; i < 40; i++) admitted(shared.acquire(`seasoned-${i % 4}`)).release(2_000);
    const newcomer = Array.from({ length: 8 }, () => admitted(shared.acquire('newcomer')));
    for (const slot of newcomer) slot.release(2_000);

    admitted(shared.acquire('large')).release(1_900_000);
    admitted(shared.acquire('large'));
    admitted(shared.acquire('large'));
    expect(shared.acquire('large')).toBeInstanceOf(Promise);
  });

  it('a tenant removed while its call is in flight is charged as a new tenant when it comes back', () => {
    const shared = slots();
    for (let i = 0; i < 40; i++) admitted(shared.acquire(`seasoned-${i % 4}`)).release(2_000);
    admitted(shared.acquire('removed')).release(1_900_000);
    const inFlight = admitted(shared.acquire('removed'));
    shared.forget('removed');
    inFlight.release(1_900_000);

    // Its large reads were forgotten with it: it is charged the replica's average read size again.
    const back = Array.from({ length: 3 }, () => admitted(shared.acquire('removed')));
    for (const slot of back) slot.release(2_000);
  });
});

describe('the replica’s store calls in flight, between tenants', () => {
  const slots = (options: TenantStoreSlotsOptions = {}) =>
    new TenantStoreSlots({
      maxCalls: 8,
      maxBytes: 4 * MiB,
      unknownReadBytes: 2 * MiB,
      maxQueued: 4,
      maxBytesInFlight: 8 * MiB,
      ...options,
    });

  const admittedAtOnce = (shared: TenantStoreSlots, tenants: number, calls: number, bytes?: number) => {
    const inFlight: StoreSlot[] = [];
    for (let tenant = 0; tenant < tenants; tenant++) {
      for (let call = 0; call < calls; call++) {
        const slot = shared.acquire(`busy-${tenant}`, bytes);
        if (slot !== null && !(slot instanceof Promise)) inFlight.push(slot);
      }
    }
    return inFlight;
  };

  it('tenants reading large entries together hold at most the replica’s bytes in flight', () => {
    const inFlight = admittedAtOnce(slots(), 20, 3);
    expect(inFlight.length * 2 * MiB).toBeLessThanOrEqual(8 * MiB);
  });

  it('tenants with many small calls together hold at most the replica’s calls in flight', () => {
    const inFlight = admittedAtOnce(slots({ maxCallsInFlight: 32 }), 10, 8, 1_000);
    expect(inFlight.length).toBe(32);
  });

  it('with the bound full, a tenant with nothing in flight goes before a tenant at its fair part that waited first', async () => {
    const shared = slots({ maxBytes: 8 * MiB });
    const [, , first, second] = admittedAtOnce(shared, 2, 2, 2 * MiB);
    // busy-0 holds its fair part (half the bound) and waits for the replica's room, before quiet does.
    const busyWaiting = shared.acquire('busy-0', 2 * MiB);
    const quiet = shared.acquire('quiet', 2_000);
    expect(busyWaiting).toBeInstanceOf(Promise);
    expect(quiet).toBeInstanceOf(Promise);
    const admittedFirst = Promise.race([
      Promise.resolve(quiet).then(() => 'quiet'),
      Promise.resolve(busyWaiting).then(() => 'busy'),
    ]);

    first!.release();
    expect(await admittedFirst).toBe('quiet');
    second!.release();
    expect(await busyWaiting).not.toBeNull();
  });
});
