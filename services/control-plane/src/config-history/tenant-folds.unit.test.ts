import { createHash, randomUUID } from 'node:crypto';
import { newEvent, recorded, tenantCreated } from '@vantageedge/projections/snapshots/testing';
import type { ControlPlaneEvent } from '@vantageedge/shared/domain/events';
import { describe, expect, it } from 'vitest';
import { createTenantFoldCache, EMPTY_FOLD, foldTenantEvents, type TenantFold } from './tenant-folds.js';

const foldOf = (tenantId: string, name: string, position: bigint): TenantFold =>
  foldTenantEvents(EMPTY_FOLD, [recorded(tenantCreated(tenantId, name), position)], position);

const LATER = 1_000_000n;

describe('the tenant fold cache', () => {
  it('holds at most its bytes, least recently used out', () => {
    const sized = createTenantFoldCache({ maxBytes: 1_000_000 });
    sized.set('t1', foldOf('t1', 'x'.repeat(1000), 1n));
    const bytes = sized.stats().bytes;
    expect(bytes).toBeGreaterThan(1000);

    const cache = createTenantFoldCache({ maxBytes: bytes * 2 + bytes / 2 });
    cache.set('t1', foldOf('t1', 'x'.repeat(1000), 1n));
    cache.set('t2', foldOf('t2', 'x'.repeat(1000), 2n));
    expect(cache.nearest('t1', LATER)?.position).toBe(1n); // t1 is now the most recently used
    cache.set('t3', foldOf('t3', 'x'.repeat(1000), 3n));
    expect(cache.stats().folds).toBe(2);
    expect(cache.nearest('t2', LATER)).toBeUndefined();
    expect(cache.nearest('t1', LATER)?.position).toBe(1n);
    expect(cache.nearest('t3', LATER)?.position).toBe(3n);
  });

  it('never moves a tenant’s newest fold back, keeps nothing larger than the budget, freezes what it keeps', () => {
    const cache = createTenantFoldCache({ maxBytes: 100_000 });
    cache.set('t1', foldOf('t1', 'new', 9n));
    cache.set('t1', foldOf('t1', 'old', 5n));
    const kept = cache.nearest('t1', LATER);
    expect(kept?.position).toBe(9n);
    expect(kept?.state?.status === 'live' && kept.state.snapshot.tenant.name).toBe('new');
    expect(kept?.state?.status === 'live' && Object.isFrozen(kept.state.snapshot.routes)).toBe(true);
    expect(cache.nearest('t1', 8n)).toBeUndefined();

    cache.set('t2', foldOf('t2', 'x'.repeat(200_000), 1n));
    expect(cache.nearest('t2', LATER)).toBeUndefined();
    const none = createTenantFoldCache({ maxBytes: 0 });
    none.set('t1', foldOf('t1', 'a', 1n));
    expect(none.stats()).toEqual({ bytes: 0, folds: 0 });
  });

  it('answers a position with the nearest checkpoint at or before it, of that tenant only', () => {
    const cache = createTenantFoldCache();
    cache.checkpoint('t1', foldOf('t1', 'at 10', 10n));
    cache.checkpoint('t1', foldOf('t1', 'at 20', 20n));
    cache.set('t1', foldOf('t1', 'at 30', 30n));
    cache.checkpoint('t2', foldOf('t2', 'other', 15n));
    expect(cache.nearest('t1', 9n)).toBeUndefined();
    expect(cache.nearest('t1', 15n)?.position).toBe(10n);
    expect(cache.nearest('t1', 29n)?.position).toBe(20n);
    expect(cache.nearest('t1', 40n)?.position).toBe(30n);
    expect(cache.nearest('t2', 40n)?.position).toBe(15n);
  });

  it('holds a tenant’s live keys only: the keys it revoked or issued already expired do not grow its fold', () => {
    const issued = (apiKeyId: string, expiresAt: string | null) =>
      newEvent('ApiKeyIssued', {
        api_key_id: apiKeyId,
        tenant_id: 't1',
        name: 'ci',
        key_hash: createHash('sha256').update(apiKeyId).digest('hex'),
        key_prefix: 've_live_abcd',
        scopes: ['read'],
        expires_at: expiresAt,
      });
    const churned = (keys: number): number => {
      // Positions of one width: the config's version (a position) counts as many bytes in every fold.
      let position = 1_000_000n;
      const events: ControlPlaneEvent[] = [recorded(tenantCreated('t1'), position)];
      for (let i = 0; i < keys; i += 1) {
        const revoked = randomUUID();
        events.push(recorded(issued(revoked, null), ++position));
        const revocation = newEvent('ApiKeyRevoked', { api_key_id: revoked, tenant_id: 't1', reason: null });
        events.push(recorded(revocation, ++position));
        events.push(recorded(issued(randomUUID(), '2020-01-01T00:00:00.000Z'), ++position));
      }
      const cache = createTenantFoldCache();
      cache.set('t1', foldTenantEvents(EMPTY_FOLD, events, position));
      return cache.stats().bytes;
    };
    expect(churned(200)).toBe(churned(1));
  });
});
