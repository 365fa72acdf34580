import { randomUUID } from 'node:crypto';
import type { CacheRequest } from '@vantageedge/shared/gateway-policies/cache-key';
import type { CompiledCachePolicy } from '@vantageedge/shared/gateway-policies/compile-cache-policy';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { publicRouteCachePolicy } from '../testing/cache-policies.js';
import { type CacheRecord, recordSize } from './cache-entry.js';
import type { CacheStore } from './cache-store.js';
import { MemoryCacheStore } from './memory-cache-store.js';
import { createResponseCache, type ResponseCache } from './response-cache.js';

const LARGE_BODY_BYTES = 1_900_000;
/** What one Redis connection moves within REDIS_COMMAND_TIMEOUT_MS (50 ms): about 1.9 MB every 6 ms. */
const BYTES_WITHIN_COMMAND_TIMEOUT = 12 * 1024 * 1024;

/**
 * The replica's one Redis connection, without a clock: replies come back in the order the commands
 * were sent, and a command sent while more reply bytes are queued ahead of it than move within the
 * command timeout times out (as ioredis's commandTimeout does), though its reply still takes its turn.
 */
function oneConnection(
  store: CacheStore,
  bytesWithinCommandTimeout = BYTES_WITHIN_COMMAND_TIMEOUT,
): CacheStore {
  let queuedBytes = 0;
  let lastReply: Promise<void> = Promise.resolve();
  const send = async <T>(bytes: number, answer: T): Promise<T> => {
    const timesOut = queuedBytes > bytesWithinCommandTimeout;
    queuedBytes += bytes;
    const turn = lastReply.then(() => new Promise<void>((resolve) => setImmediate(resolve)));
    lastReply = turn;
    await turn;
    queuedBytes -= bytes;
    if (timesOut) throw new Error('Command timed out');
    return answer;
  };
  return new Proxy(store, {
    get(target, name, receiver) {
      if (name === 'get') {
        return async (key: string) => {
          const record: CacheRecord | null = await target.get(key);
          return send(record ? recordSize(record) : 0, record);
        };
      }
      const value = Reflect.get(target, name, receiver);
      if (typeof value !== 'function') return value;
      return async (...args: unknown[]) => send(0, await value.apply(target, args));
    },
  });
}

function policyWithLargeBodies(tenantId: string): CompiledCachePolicy {
  return publicRouteCachePolicy(tenantId, 600, 2_000_000);
}

const get = (path: string): CacheRequest => ({ method: 'GET', path, query: '', headers: {} });

/** Stores a response through `replica` (the way another replica's fill lands in the shared store). */
async function fill(replica: ResponseCache, policy: CompiledCachePolicy, path: string, body: Buffer) {
  const lookup = await replica.lookup(policy, get(path), {});
  if (lookup.outcome !== 'MISS' || lookup.fill === null) throw new Error(`${path} should be a miss`);
  await replica.store(lookup.fill, 'GET', {
    status: 200,
    headers: { 'cache-control': 'public, max-age=600' },
    body,
  });
}

describe('the shared store of a replica, between tenants', () => {
  const replica = (store: CacheStore, l1MaxBytes: number) =>
    createResponseCache({
      store,
      l1MaxBytes,
      registry: new Registry(),
      logger: createLogger({ service: 'test', level: 'error' }),
    });

  it('one tenant reading many large entries at once does not turn another tenant’s HITs into BYPASS', async () => {
    const shared = new MemoryCacheStore({ maxBytes: 1024 * 1024 * 1024 });
    const filler = replica(shared, 1_000_000);
    // Its L1 holds two of the large entries per tenant: the rest of them are read from the store.
    const served = replica(oneConnection(shared), 16 * 1024 * 1024);
    const hostile = policyWithLargeBodies(randomUUID());
    const victim = policyWithLargeBodies(randomUUID());
    await Promise.all([filler.prepareTenant(hostile.tenantId), filler.prepareTenant(victim.tenantId)]);
    await Promise.all([served.prepareTenant(hostile.tenantId), served.prepareTenant(victim.tenantId)]);
    const large = Buffer.alloc(LARGE_BODY_BYTES, 1);
    for (let i = 0; i < 60; i++) await fill(filler, hostile, `/large/${i}`, large);
    for (let i = 0; i < 15; i++) await fill(filler, victim, `/home/${i}`, Buffer.from(`{"page":${i}}`));

    const victimOutcomes: string[] = [];
    for (let round = 0; round < 3; round++) {
      const flood = Array.from({ length: 60 }, (_, i) => served.lookup(hostile, get(`/large/${i}`), {}));
      const victimLookups = Array.from({ length: 5 }, (_, i) =>
        served.lookup(victim, get(`/home/${round * 5 + i}`), {}),
      );
      for (const lookup of await Promise.all(victimLookups)) {
        victimOutcomes.push(lookup.outcome === 'BYPASS' ? `BYPASS ${lookup.reason}` : lookup.outcome);
      }
      for (const lookup of await Promise.all(flood)) {
        if (lookup.outcome === 'MISS' && lookup.fill) served.abandon(lookup.fill);
      }
    }

    expect(victimOutcomes).toEqual(Array(15).fill('HIT'));
    await Promise.all([filler.close(), served.close()]);
  });

  it('many tenants reading large entries together do not turn another tenant’s HITs into BYPASS', async () => {
    const shared = new MemoryCacheStore({ maxBytes: 1024 * 1024 * 1024 });
    const filler = replica(shared, 1_000_000);
    const served = replica(oneConnection(shared), 1_000_000);
    const hostile = Array.from({ length: 12 }, () => policyWithLargeBodies(randomUUID()));
    const victim = policyWithLargeBodies(randomUUID());
    for (const policy of [...hostile, victim]) {
      await Promise.all([filler.prepareTenant(policy.tenantId), served.prepareTenant(policy.tenantId)]);
    }
    const large = Buffer.alloc(LARGE_BODY_BYTES, 1);
    for (const policy of hostile)
      for (let i = 0; i < 2; i++) await fill(filler, policy, `/large/${i}`, large);
    for (let i = 0; i < 5; i++) await fill(filler, victim, `/home/${i}`, Buffer.from(`{"page":${i}}`));

    const flood = hostile.flatMap((policy) =>
      [0, 1].map((i) => served.lookup(policy, get(`/large/${i}`), {})),
    );
    const victimLookups = Array.from({ length: 5 }, (_, i) => served.lookup(victim, get(`/home/${i}`), {}));
    const victimOutcomes = (await Promise.all(victimLookups)).map((lookup) =>
      lookup.outcome === 'BYPASS' ? `BYPASS ${lookup.reason}` : lookup.outcome,
    );
    for (const lookup of await Promise.all(flood)) {
      if (lookup.outcome === 'MISS' && lookup.fill) served.abandon(lookup.fill);
    }

    expect(victimOutcomes).toEqual(Array(5).fill('HIT'));
    await Promise.all([filler.close(), served.close()]);
  });

  it('commands timing out behind one tenant’s large replies do not switch the cache off for everyone', async () => {
    const shared = new MemoryCacheStore({ maxBytes: 1024 * 1024 * 1024 });
    const filler = replica(shared, 1_000_000);
    // A connection so loaded that any command sent behind one large reply times out.
    const served = replica(oneConnection(shared, 1024 * 1024), 1_000_000);
    const hostile = policyWithLargeBodies(randomUUID());
    const victim = policyWithLargeBodies(randomUUID());
    await Promise.all([filler.prepareTenant(hostile.tenantId), filler.prepareTenant(victim.tenantId)]);
    await Promise.all([served.prepareTenant(hostile.tenantId), served.prepareTenant(victim.tenantId)]);
    const large = Buffer.alloc(LARGE_BODY_BYTES, 1);
    for (let i = 0; i < 20; i++) await fill(filler, hostile, `/large/${i}`, large);
    await fill(filler, victim, '/home', Buffer.from('{"page":"home"}'));

    const flood = await Promise.all(
      Array.from({ length: 20 }, (_, i) => served.lookup(hostile, get(`/large/${i}`), {})),
    );
    for (const lookup of flood) if (lookup.outcome === 'MISS' && lookup.fill) served.abandon(lookup.fill);
    expect(flood.filter((lookup) => lookup.outcome === 'BYPASS').length).toBeGreaterThanOrEqual(3);

    const after = await served.lookup(victim, get('/home'), {});
    expect(after.outcome === 'BYPASS' ? `BYPASS ${after.reason}` : after.outcome).toBe('HIT');
    await Promise.all([filler.close(), served.close()]);
  });

  it('a store that stops answering still switches the cache off, large entries or not', async () => {
    const shared = new MemoryCacheStore({ maxBytes: 1024 * 1024 * 1024 });
    const filler = replica(shared, 1_000_000);
    const hostile = policyWithLargeBodies(randomUUID());
    await filler.prepareTenant(hostile.tenantId);
    for (let i = 0; i < 3; i++) await fill(filler, hostile, `/large/${i}`, Buffer.alloc(LARGE_BODY_BYTES, 1));
    let reads = 0;
    const hung = new Proxy(shared, {
      get(target, name, receiver) {
        if (name === 'get') {
          return async () => {
            reads++;
            throw new Error('Command timed out');
          };
        }
        const value = Reflect.get(target, name, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const served = replica(hung, 1_000_000);
    await served.prepareTenant(hostile.tenantId);

    for (let i = 0; i < 100; i++) await served.lookup(hostile, get(`/large/${i % 3}`), {});

    // Once open, the circuit answers without asking the store.
    expect(reads).toBeLessThan(100);
    await Promise.all([filler.close(), served.close()]);
  });
});
