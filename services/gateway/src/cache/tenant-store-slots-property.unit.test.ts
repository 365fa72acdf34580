import { describe, expect, it } from 'vitest';
import { type StoreSlot, TenantStoreSlots } from './tenant-store-slots.js';

const MiB = 1024 * 1024;

/** A small deterministic generator, so a failing seed can be replayed. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Tenants acquire reads and writes (some larger than the replica's bound), release in random order with
 * random read sizes (some twice), and leave the config; then every call in flight ends. Each seed is one
 * such history, replayable by its number.
 */
describe('store slots under many tenants calling in random order', () => {
  it('every waiting call gets its slot once the calls in flight end, and nothing is left counted', async () => {
    for (let seed = 1; seed <= 300; seed++) {
      const next = random(seed);
      const pick = (n: number) => Math.floor(next() * n);
      const maxCallsInFlight = 6 + pick(10);
      const maxBytesInFlight = (2 + pick(6)) * MiB;
      const slots = new TenantStoreSlots({
        maxCalls: 1 + pick(6),
        maxBytes: (1 + pick(4)) * MiB,
        unknownReadBytes: 2 * MiB,
        maxQueued: pick(5),
        maxBytesInFlight,
        maxCallsInFlight,
      });
      const tenants = Array.from({ length: 2 + pick(6) }, (_, i) => `tenant-${i}`);
      const inFlight: StoreSlot[] = [];
      let waiting = 0;
      const take = (slot: StoreSlot) => {
        inFlight.push(slot);
        expect(inFlight.length, `seed ${seed}`).toBeLessThanOrEqual(maxCallsInFlight);
      };
      const releaseOne = () => {
        const [slot] = inFlight.splice(pick(inFlight.length), 1);
        const moved = next() < 0.3 ? pick(3 * MiB) : pick(64 * 1024);
        slot?.release(moved);
        if (next() < 0.1) slot?.release(moved);
      };

      for (let step = 0; step < 400; step++) {
        const roll = next();
        if (roll < 0.55) {
          const tenant = tenants[pick(tenants.length)]!;
          const bytes = next() < 0.5 ? undefined : next() < 0.1 ? maxBytesInFlight + MiB : pick(2 * MiB);
          const slot = slots.acquire(tenant, bytes);
          if (slot instanceof Promise) {
            waiting++;
            void slot.then((admitted) => {
              waiting--;
              take(admitted);
            });
          } else if (slot !== null) take(slot);
        } else if (roll < 0.95) {
          if (inFlight.length > 0) releaseOne();
        } else {
          slots.forget(tenants[pick(tenants.length)]!);
        }
        await settle();
      }
      for (let round = 0; round < 10_000 && (inFlight.length > 0 || waiting > 0); round++) {
        if (inFlight.length > 0) releaseOne();
        await settle();
      }
      expect({ seed, waiting, inFlight: inFlight.length }).toEqual({ seed, waiting: 0, inFlight: 0 });
      // Nothing is left counted in flight: two new tenants each take half the replica's bytes at once.
      const half = Math.floor(maxBytesInFlight / 2);
      const first = slots.acquire('fresh-a', half);
      const second = slots.acquire('fresh-b', half);
      expect(first, `seed ${seed}`).not.toBeInstanceOf(Promise);
      expect(second, `seed ${seed}`).not.toBeInstanceOf(Promise);
    }
  });
});
