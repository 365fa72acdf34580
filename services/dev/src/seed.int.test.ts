import { hashApiKey } from '@vantageedge/shared/domain/api-key-hash';
import { PostgresEventStore } from '@vantageedge/shared/event-store/postgres/postgres-event-store';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_API_KEY, DEMO_IDS, SEED_ACTOR, seedDemo } from './seed.js';

const PEPPER = 'seed-test-pepper-0123456789abcdef0123456789';

/** make seed: the demo data through the command layer, idempotent, with the fixed demo key. */
describe('demo seed', () => {
  let db: TestDatabase;
  let store: PostgresEventStore;

  beforeAll(async () => {
    db = await createTestDatabase();
    store = new PostgresEventStore({ pool: db.pool });
  });
  afterAll(async () => {
    await store?.close();
    await db?.drop();
  });

  it('creates tenant demo, its origin, the four demo routes and the key demo_key_abc123', async () => {
    const first = await seedDemo({ store, apiKeyPepper: PEPPER, originUrl: 'http://127.0.0.1:9999' });
    expect(first.created).toEqual([
      'tenant demo-company',
      'origin demo-origin',
      'route /api/public/*',
      'route /api/users/*',
      'route /api/admin/*',
      'route /api/posts/*',
      'user user_dev_admin (owner)',
      'api key demo_key_abc123',
    ]);
    const events = await store.readAll();
    expect(events.map((e) => e.type)).toEqual([
      'TenantCreated',
      'OriginCreated',
      'RouteCreated',
      'RouteCreated',
      'RouteCreated',
      'RouteCreated',
      'UserCreated',
      'ApiKeyIssued',
    ]);
    expect(new Set(events.map((e) => e.metadata.actor))).toEqual(new Set([SEED_ACTOR]));
    const tenant = events[0]!.data as { subdomain: string; name: string };
    expect(tenant).toMatchObject({ subdomain: 'demo', name: 'demo-company' });
    // The demo tenant has no Clerk org: its JWT route accepts its users, and the dev token's user is one.
    expect(events[6]!.data).toMatchObject({ clerk_user_id: 'user_dev_admin', role: 'owner' });
    const key = events[7]!.data as { key_hash: string; tenant_id: string };
    expect(key.key_hash).toBe(hashApiKey(PEPPER, DEMO_API_KEY));
    const routes = events.slice(2, 6).map((e) => e.data as Record<string, unknown>);
    expect(routes.map((r) => [r['path_pattern'], r['auth_mode'], r['strip_prefix']])).toEqual([
      ['/api/public/*', 'public', '/api'],
      ['/api/users/*', 'jwt_required', '/api'],
      ['/api/admin/*', 'apikey_required', '/api'],
      ['/api/posts/*', 'public', '/api'],
    ]);
    expect(routes[1]!['rate_limit']).toMatchObject({ burst: 100, requests_per_second: 1, scope: 'user' });
    expect(routes[3]!['cache_policy']).toMatchObject({ enabled: true, ttl_seconds: 300 });
  });

  it('is idempotent: a second run appends nothing', async () => {
    const before = (await store.readAll()).length;
    const second = await seedDemo({ store, apiKeyPepper: PEPPER, originUrl: 'http://127.0.0.1:9999' });
    expect(second.created).toEqual([]);
    expect(second.skipped).toHaveLength(8);
    expect(await store.readAll()).toHaveLength(before);
  });

  it('points the demo origin at a new origin URL instead of adding a second origin', async () => {
    const third = await seedDemo({ store, apiKeyPepper: PEPPER, originUrl: 'http://127.0.0.1:9998' });
    expect(third.created).toEqual(['origin demo-origin now at http://127.0.0.1:9998']);
    const last = (await store.readAll()).at(-1)!;
    expect(last.type).toBe('OriginUpdated');
    expect(last.stream).toContain(DEMO_IDS.origin);
  });
});
