import { randomUUID } from 'node:crypto';
import type { CacheRequest } from '@vantageedge/shared/gateway-policies/cache-key';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { publicRouteCachePolicy } from '../testing/cache-policies.js';
import type { CacheStore } from './cache-store.js';
import { MemoryCacheStore } from './memory-cache-store.js';
import { type CacheLookup, createResponseCache, type ResponseCache } from './response-cache.js';

/**
 * A request that begins after a purge (as this replica learned of it) is never answered with a response
 * whose origin request began before the purge: not by coalescing behind a fill (a client's, a background
 * refresh, another replica's) that was under way when the purge came, nor from the L1 copy of such a
 * fill while its write to the shared store is on its way. A client that POSTs an update and then GETs the
 * resource reads the update; an admin's purge answered 200 is not followed by the old content.
 */
const logger = createLogger({ service: 'test', level: 'error' });
const tenantId = randomUUID();
const policy = publicRouteCachePolicy(tenantId);
const get = (path: string, method = 'GET'): CacheRequest => ({ method, path, query: '', headers: {} });
const tagged = (cacheControl = 'max-age=60') => ({
  'cache-control': cacheControl,
  'surrogate-key': 'product-7',
  etag: '"v1"',
});

function replica(store: CacheStore, now: () => number): ResponseCache {
  return createResponseCache({
    store,
    l1MaxBytes: 1_000_000,
    registry: new Registry(),
    logger,
    now,
    fillPollMs: 1,
    // A request that followed a fill it should not have gives up on it soon (MISS, no fill of its own).
    coalesceTimeoutMs: 1_000,
    generationRefreshMs: 0,
  });
}

/**
 * The body a lookup answers with, or 'origin' when the request goes there itself; a fill it leads is
 * given the origin's current answer, `current`, so the requests coalesced behind it are answered.
 */
async function answer(
  cache: ResponseCache,
  lookup: CacheLookup | Promise<CacheLookup>,
  method = 'GET',
): Promise<string> {
  const settled = await lookup;
  if (settled.outcome === 'HIT' || settled.outcome === 'STALE') return settled.entry.body.toString();
  if (settled.outcome !== 'MISS') return settled.outcome;
  if (settled.fill !== null)
    await cache.store(settled.fill, method, { status: 200, headers: tagged(), body: Buffer.from('current') });
  return 'origin';
}

/** The lookup's fill: it leads (goes to the origin for the key). */
async function leads(lookup: CacheLookup | Promise<CacheLookup>) {
  const settled = await lookup;
  if (settled.outcome !== 'MISS' || settled.fill === null)
    throw new Error(`expected to lead the fill, got ${settled.outcome}`);
  return settled.fill;
}

/**
 * `store` whose calls of `method` are held until `release()`: before the store runs them, or (`after`)
 * once it has run them, before their answer comes back.
 */
function holdingCalls<S extends object>(store: S, method: keyof S, when: 'before' | 'after' = 'before') {
  let release: () => void = () => {};
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  const held = new Proxy(store, {
    get(target, name) {
      const value = Reflect.get(target, name) as unknown;
      if (typeof value !== 'function') return value;
      if (name !== method) return value.bind(target);
      const call = value as (...a: unknown[]) => unknown;
      return async (...args: unknown[]) => {
        if (when === 'before') await released;
        const result = await call.apply(target, args);
        if (when === 'after') await released;
        return result;
      };
    },
  });
  return { store: held, release };
}

/**
 * `store` whose next read of a stored response, once `arm()`ed, runs `during` after the store has read
 * it and before its answer comes back (a purge heard while that read is on its way).
 */
function duringNextResponseRead(store: MemoryCacheStore, during: () => Promise<void>) {
  let armed = false;
  const reading = new Proxy(store, {
    get(target, name) {
      const value = Reflect.get(target, name) as unknown;
      if (typeof value !== 'function') return value;
      if (name !== 'get') return value.bind(target);
      return async (key: string) => {
        const record = await target.get(key);
        if (armed && record?.kind === 'response') {
          armed = false;
          await during();
        }
        return record;
      };
    },
  });
  return {
    store: reading,
    arm: () => {
      armed = true;
    },
  };
}

/**
 * Whether `call` (a store call's caller: a fill's store, a POST's invalidation) is still waiting for
 * the store after a turn of the event loop, the time a request that comes in next may arrive: without
 * a hold the store's calls are answered by then, and the window the case is about has closed.
 */
async function stillWaiting(call: Promise<unknown>): Promise<boolean> {
  let settled = false;
  const settle = () => {
    settled = true;
  };
  void call.then(settle, settle);
  await new Promise((resolve) => setImmediate(resolve));
  return !settled;
}

describe('a request after a purge, with a fill that began before it under way', () => {
  let clock = 1_000_000;
  const now = () => clock;
  const setUp = async () => {
    const cache = replica(new MemoryCacheStore({ maxBytes: 1_000_000, now }), now);
    await cache.prepareTenant(tenantId);
    return cache;
  };
  const purges = {
    "a POST's invalidation of the path": (cache: ResponseCache, path: string) =>
      cache.invalidatePath(policy, path),
    'a purge by tag': (cache: ResponseCache) => cache.purgeTags(tenantId, ['product-7']),
    'a soft purge by tag': (cache: ResponseCache) => cache.purgeTags(tenantId, ['product-7'], { soft: true }),
  };

  for (const [name, purge] of Object.entries(purges)) {
    it(`${name}: a GET and a HEAD that come after it do not get the fill's answer`, async () => {
      const cache = await setUp();
      const path = `/posts/${randomUUID()}`;
      const fill = await leads(cache.lookup(policy, get(path), {}));
      const before = cache.lookup(policy, get(path), {}); // coalesced before the purge
      clock += 1;
      await purge(cache, path);
      clock += 1;
      const afterGet = cache.lookup(policy, get(path), {});
      const afterHead = cache.lookup(policy, get(path, 'HEAD'), {});
      await cache.store(fill, 'GET', { status: 200, headers: tagged(), body: Buffer.from('old') });
      // The request that waited before the purge began before it: it may have the answer.
      expect(await answer(cache, before)).toBe('old');
      expect(await answer(cache, afterGet)).toBe('origin');
      expect(await answer(cache, afterHead, 'HEAD')).toBe('current');
      expect(await answer(cache, cache.lookup(policy, get(path), {}))).toBe('current');
      await cache.close();
    });
  }

  it('a GET after a POST goes to the origin at once, without waiting for the fill under way (or its lease)', async () => {
    const cache = await setUp();
    const path = `/posts/${randomUUID()}`;
    const fill = await leads(cache.lookup(policy, get(path), {}));
    clock += 1;
    await cache.invalidatePath(policy, path);
    clock += 1;
    const after = await leads(cache.lookup(policy, get(path), {}));
    await cache.store(fill, 'GET', { status: 200, headers: tagged(), body: Buffer.from('old') });
    await cache.store(after, 'GET', { status: 200, headers: tagged(), body: Buffer.from('current') });
    expect(await answer(cache, cache.lookup(policy, get(path), {}))).toBe('current');
    await cache.close();
  });

  it("a purge by tag while a stale entry's background refresh is out: later requests do not get the refresh's answer", async () => {
    const cache = await setUp();
    const path = `/posts/${randomUUID()}`;
    const first = await leads(cache.lookup(policy, get(path), {}));
    const swr = 'max-age=1, stale-while-revalidate=60';
    await cache.store(first, 'GET', { status: 200, headers: tagged(swr), body: Buffer.from('v1') });
    clock += 2_000;
    const stale = await cache.lookup(policy, get(path), {});
    if (stale.outcome !== 'STALE' || stale.revalidation === null) throw new Error('expected a refresh');
    clock += 1;
    await cache.purgeTags(tenantId, ['product-7']);
    clock += 1;
    const after = cache.lookup(policy, get(path), {});
    await cache.store(stale.revalidation, 'GET', {
      status: 200,
      headers: tagged(swr),
      body: Buffer.from('refreshed before the purge'),
    });
    expect(await answer(cache, after)).toBe('origin');
    expect(await answer(cache, cache.lookup(policy, get(path), {}))).toBe('current');
    await cache.close();
  });

  it("a purge heard before the fill is committed: the fill's L1 copy answers nobody while its write is on its way", async () => {
    const slowWrites = holdingCalls(new MemoryCacheStore({ maxBytes: 1_000_000, now }), 'putResponse');
    const cache = replica(slowWrites.store, now);
    await cache.prepareTenant(tenantId);
    const path = `/posts/${randomUUID()}`;
    const fill = await leads(cache.lookup(policy, get(path), {}));
    clock += 1;
    await cache.purgeTags(tenantId, ['product-7']);
    clock += 1;
    const storing = cache.store(fill, 'GET', { status: 200, headers: tagged(), body: Buffer.from('old') });
    // The next request comes in while the write is at the store, its answer not back yet.
    expect(await stillWaiting(storing)).toBe(true);
    const next = cache.lookup(policy, get(path), {});
    expect('outcome' in next && next.outcome).not.toBe('HIT');
    slowWrites.release();
    expect(await storing).toBe(false);
    expect(await answer(cache, next)).toBe('origin');
    await cache.close();
  });

  it("a GET after a POST while the POST's invalidation is still under way in the store does not get the entry it drops", async () => {
    const slowInvalidations = holdingCalls(
      new MemoryCacheStore({ maxBytes: 1_000_000, now }),
      'invalidatePath',
    );
    const cache = replica(slowInvalidations.store, now);
    await cache.prepareTenant(tenantId);
    const path = `/posts/${randomUUID()}`;
    const fill = await leads(cache.lookup(policy, get(path), {}));
    await cache.store(fill, 'GET', { status: 200, headers: tagged(), body: Buffer.from('old') });
    clock += 1;
    const invalidating = cache.invalidatePath(policy, path); // the POST's answer went out
    // The GET comes in while the store still lists the entry the invalidation is to drop.
    expect(await stillWaiting(invalidating)).toBe(true);
    clock += 1;
    expect(await answer(cache, cache.lookup(policy, get(path), {}))).toBe('origin');
    slowInvalidations.release();
    await invalidating;
    expect(await answer(cache, cache.lookup(policy, get(path), {}))).not.toBe('old');
    await cache.close();
  });

  it("after the replica's clock was set back (an NTP step), a fill whose tag was purged while its origin was asked is still refused by the store", async () => {
    const cache = await setUp();
    // Events before the step: the cache's order of events stays ahead of the clock for a while.
    const earlier = await leads(cache.lookup(policy, get(`/posts/${randomUUID()}`), {}));
    cache.abandon(earlier);
    clock -= 1_000;
    const path = `/posts/${randomUUID()}`;
    const fill = await leads(cache.lookup(policy, get(path), {}));
    clock += 5;
    await cache.purgeTags(tenantId, ['product-7']);
    clock += 5;
    expect(await cache.store(fill, 'GET', { status: 200, headers: tagged(), body: Buffer.from('old') })).toBe(
      false,
    );
    expect(await answer(cache, cache.lookup(policy, get(path), {}))).toBe('origin');
    await cache.close();
    clock += 1_000;
  });

  it("a POST on a replica that has not loaded the tenant's purge generations yet (just started, or their load failed) still invalidates the path on every replica", async () => {
    const shared = new MemoryCacheStore({ maxBytes: 1_000_000, now });
    const serving = replica(shared, now);
    const starting = replica(shared, now);
    await serving.prepareTenant(tenantId);
    const path = `/posts/${randomUUID()}`;
    const fill = await leads(serving.lookup(policy, get(path), {}));
    await serving.store(fill, 'GET', { status: 200, headers: tagged(), body: Buffer.from('old') });
    clock += 1;
    await starting.invalidatePath(policy, path); // the POST's answer went out from the other replica
    await new Promise((resolve) => setImmediate(resolve)); // its purge message is heard
    clock += 1;
    expect(await answer(serving, serving.lookup(policy, get(path), {}))).toBe('origin');
    await Promise.all([serving.close(), starting.close()]);
  });

  it("the fill that began before a POST, refused by the store's fence, leaves the L1 copy of the fill after the POST (no origin request for the next GET)", async () => {
    // The store has fenced the path and deleted its entries; the invalidation's last command is out.
    const slowToAnswer = holdingCalls(
      new MemoryCacheStore({ maxBytes: 1_000_000, now }),
      'invalidatePath',
      'after',
    );
    const cache = replica(slowToAnswer.store, now);
    await cache.prepareTenant(tenantId);
    const path = `/posts/${randomUUID()}`;
    const before = await leads(cache.lookup(policy, get(path), {}));
    clock += 1;
    const invalidating = cache.invalidatePath(policy, path);
    // Until its answer comes back the store's entries of the path answer no request here: the L1 does.
    expect(await stillWaiting(invalidating)).toBe(true);
    clock += 1;
    const after = await leads(cache.lookup(policy, get(path), {}));
    await cache.store(after, 'GET', { status: 200, headers: tagged(), body: Buffer.from('current') });
    expect(
      await cache.store(before, 'GET', { status: 200, headers: tagged(), body: Buffer.from('old') }),
    ).toBe(false);
    expect(await answer(cache, cache.lookup(policy, get(path), {}))).toBe('current');
    slowToAnswer.release();
    await invalidating;
    await cache.close();
  });

  it("a POST heard while the write of a fill that began before it is on its way: the store refuses that fill, and it leaves the L1 copy of a reload's fill after the POST", async () => {
    const memory = new MemoryCacheStore({ maxBytes: 1_000_000, now });
    const slowWrites = holdingCalls(memory, 'putResponse');
    const slowToAnswer = holdingCalls(slowWrites.store, 'invalidatePath', 'after');
    const cache = replica(slowToAnswer.store, now);
    await cache.prepareTenant(tenantId);
    const path = `/posts/${randomUUID()}`;
    const before = await leads(cache.lookup(policy, get(path), {}));
    // The origin takes a while to answer: the held write, run 2 ms after it was sent, still reads as
    // asked before the POST.
    clock += 5;
    // No purge heard yet: this replica keeps the fill's copy while the store decides.
    const storing = cache.store(before, 'GET', { status: 200, headers: tagged(), body: Buffer.from('old') });
    expect(await stillWaiting(storing)).toBe(true);
    clock += 1;
    const invalidating = cache.invalidatePath(policy, path);
    expect(await stillWaiting(invalidating)).toBe(true);
    clock += 1;
    // A reload goes to the origin at once, without waiting for the first fill's lease.
    const reload: CacheRequest = { ...get(path), headers: { 'cache-control': 'no-cache' } };
    const after = await leads(cache.lookup(policy, reload, {}));
    const reloading = cache.store(after, 'GET', {
      status: 200,
      headers: tagged(),
      body: Buffer.from('current'),
    });
    slowWrites.release();
    expect(await storing).toBe(false);
    expect(await reloading).toBe(true);
    // The store's entries of the path still answer nobody here: the reload's L1 copy answers.
    expect(await answer(cache, cache.lookup(policy, get(path), {}))).toBe('current');
    slowToAnswer.release();
    await invalidating;
    await cache.close();
  });

  it("a POST's invalidation that fails once in the store (a command timeout) is tried again: the GET after it is not answered with the old entry", async () => {
    const memory = new MemoryCacheStore({ maxBytes: 1_000_000, now });
    let failures = 1;
    const flaky = new Proxy(memory, {
      get(target, name) {
        const value = Reflect.get(target, name) as unknown;
        if (typeof value !== 'function') return value;
        if (name !== 'invalidatePath') return value.bind(target);
        return (...args: unknown[]) => {
          if (failures-- > 0) return Promise.reject(new Error('Command timed out'));
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    const cache = replica(flaky, now);
    await cache.prepareTenant(tenantId);
    const path = `/posts/${randomUUID()}`;
    const fill = await leads(cache.lookup(policy, get(path), {}));
    await cache.store(fill, 'GET', { status: 200, headers: tagged(), body: Buffer.from('old') });
    await cache.invalidatePath(policy, path);
    expect(await answer(cache, cache.lookup(policy, get(path), {}))).toBe('origin');
    await cache.close();
  });

  it('a store read answered while the purge arrives: its answer is not kept in the L1 for the requests after it', async () => {
    const shared = new MemoryCacheStore({ maxBytes: 1_000_000, now });
    const filler = replica(shared, now);
    let reader: ResponseCache | undefined;
    const readerStore = duringNextResponseRead(shared, async () => {
      clock += 1;
      await reader!.purgeTags(tenantId, ['product-7']);
      clock += 1;
    });
    reader = replica(readerStore.store, now);
    await Promise.all([filler.prepareTenant(tenantId), reader.prepareTenant(tenantId)]);
    const path = `/posts/${randomUUID()}`;
    const fill = await leads(filler.lookup(policy, get(path), {}));
    await filler.store(fill, 'GET', { status: 200, headers: tagged(), body: Buffer.from('old') });
    readerStore.arm();
    expect(await answer(reader, reader.lookup(policy, get(path), {}))).toBe('old'); // began before the purge
    const next = reader.lookup(policy, get(path), {});
    expect('outcome' in next && next.outcome).not.toBe('HIT');
    expect(await answer(reader, next)).toBe('origin');
    await Promise.all([filler.close(), reader.close()]);
  });

  it("another replica's fill read while the purge arrives: a request after the purge does not get it", async () => {
    const shared = new MemoryCacheStore({ maxBytes: 1_000_000, now });
    const holder = replica(shared, now);
    const path = `/posts/${randomUUID()}`;
    let late: Promise<CacheLookup> | CacheLookup | undefined;
    let waiter: ResponseCache | undefined;
    // The waiter's read of the holder's fill: the purge is done (and heard here) before the read's
    // answer comes back, and a request comes in after it.
    const waiterStore = duringNextResponseRead(shared, async () => {
      clock += 1;
      await waiter!.purgeTags(tenantId, ['product-7']);
      clock += 1;
      late = waiter!.lookup(policy, get(path), {});
    });
    waiter = replica(waiterStore.store, now);
    await Promise.all([holder.prepareTenant(tenantId), waiter.prepareTenant(tenantId)]);
    const fill = await leads(holder.lookup(policy, get(path), {}));
    const waiting = waiter.lookup(policy, get(path), {}); // the holder has the lease: polls its fill
    await holder.store(fill, 'GET', { status: 200, headers: tagged(), body: Buffer.from('old') });
    waiterStore.arm();
    expect(await answer(waiter, waiting)).toBe('old'); // began before the purge
    expect(late).toBeDefined();
    // Nor is the read's answer kept in the L1 for the requests after the purge.
    const next = waiter.lookup(policy, get(path), {});
    expect('outcome' in next && next.outcome).not.toBe('HIT');
    expect(await answer(waiter, late!)).toBe('origin');
    expect(await answer(waiter, next)).toBe('current');
    await Promise.all([holder.close(), waiter.close()]);
  });
});
