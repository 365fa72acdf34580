import { randomUUID } from 'node:crypto';
import type { CacheRequest } from '@vantageedge/shared/gateway-policies/cache-key';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { publicRouteCachePolicy } from '../testing/cache-policies.js';
import type { CacheStore } from './cache-store.js';
import { MemoryCacheStore } from './memory-cache-store.js';
import { createResponseCache } from './response-cache.js';

/**
 * Two replicas over one shared store, a miss on both: the replica without the key's lease waits for
 * the holder's fill. The holder stores its response, then gives the lease back; a waiter that finds
 * the lease free must still find that response, not go to the origin a second time.
 */
describe('a miss on two replicas', () => {
  const tenantId = randomUUID();
  const policy = publicRouteCachePolicy(tenantId);
  const request: CacheRequest = { method: 'GET', path: '/posts/1', query: '', headers: {} };
  const replica = (store: CacheStore) =>
    createResponseCache({
      store,
      l1MaxBytes: 1_000_000,
      registry: new Registry(),
      logger: createLogger({ service: 'test', level: 'error' }),
      fillPollMs: 5,
      fillWaitMs: 5_000,
    });

  it('the waiter serves the holder’s fill when the holder finishes between its look and its lease', async () => {
    const shared = new MemoryCacheStore({ maxBytes: 1_000_000 });
    const holder = replica(shared);
    let finishHolder: (() => Promise<void>) | undefined;
    let waiting = false;
    // The waiter's store: after it failed to take the lease, its next look finds nothing, and the
    // holder's fill lands (stored, lease given back) just before that look answers.
    const waiterStore = new Proxy(shared, {
      get(target, name, receiver) {
        if (name === 'acquireLease') {
          return async (key: string, ttlMs: number) => {
            const token = await target.acquireLease(key, ttlMs);
            if (token === null) waiting = true;
            return token;
          };
        }
        if (name === 'get') {
          return async (key: string) => {
            const record = await target.get(key);
            if (waiting && finishHolder !== undefined) {
              const finish = finishHolder;
              finishHolder = undefined;
              await finish();
            }
            return record;
          };
        }
        const value = Reflect.get(target, name, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const waiter = replica(waiterStore);
    await Promise.all([holder.prepareTenant(tenantId), waiter.prepareTenant(tenantId)]);

    const lead = await holder.lookup(policy, request, {});
    expect(lead.outcome).toBe('MISS');
    if (lead.outcome !== 'MISS' || lead.fill === null) throw new Error('the holder should lead the fill');
    const fill = lead.fill;
    finishHolder = async () => {
      await holder.store(fill, 'GET', { status: 200, headers: {}, body: Buffer.from('{"from":"holder"}') });
    };

    const answer = await waiter.lookup(policy, request, {});
    expect(finishHolder).toBeUndefined(); // the holder's fill landed during the wait
    expect(answer.outcome).toBe('HIT');
    if (answer.outcome === 'HIT') expect(answer.entry.body.toString()).toBe('{"from":"holder"}');
    await Promise.all([holder.close(), waiter.close()]);
  });
});
