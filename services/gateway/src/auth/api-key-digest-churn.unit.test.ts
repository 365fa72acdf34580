import { randomUUID } from 'node:crypto';
import * as keyHash from '@vantageedge/shared/domain/api-key-hash';
import { generateApiKey, hashApiKey } from '@vantageedge/shared/domain/api-key-hash';
import { describe, expect, it, vi } from 'vitest';
import { GatewayConfigStore } from '../config/gateway-config-store.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { Authenticator } from './authenticator.js';

vi.mock('@vantageedge/shared/domain/api-key-hash', async (original) => {
  const actual = await original<typeof import('@vantageedge/shared/domain/api-key-hash')>();
  return { ...actual, hashApiKey: vi.fn(actual.hashApiKey) };
});

const PEPPER = 'unit-pepper-0123456789abcdef0123456789abcdef';
const noUpstreams = () => ({ acquire: () => undefined, close: async () => {} });

function tenantWithKeys(subdomain: string, keys: readonly string[]) {
  const originId = randomUUID();
  return buildSnapshot({
    tenantId: randomUUID(),
    version: 1,
    subdomain,
    origins: [{ id: originId, targets: ['http://127.0.0.1:1'] }],
    routes: [{ origin_id: originId, path_pattern: '/keyed/*', auth_mode: 'apikey_required' }],
    apiKeys: keys.map((key) => ({ key_hash: hashApiKey(PEPPER, key) })),
  });
}

/**
 * The digest cache is shared by every tenant of a replica. A tenant's clients sending endless
 * well-formed keys (unknown ones, or its own) must not push another tenant's keys out of it.
 */
describe('API-key digests shared by tenants', () => {
  it("keeps a quiet tenant's key remembered while another tenant's clients churn through keys", () => {
    const store = new GatewayConfigStore({ baseDomains: ['localhost'], createUpstreamSet: noUpstreams });
    const quietKey = generateApiKey();
    store.apply(tenantWithKeys('quiet', [quietKey]));
    store.apply(tenantWithKeys('noisy', [generateApiKey()]));
    const quiet = store.resolveHost('quiet.localhost')!;
    const noisy = store.resolveHost('noisy.localhost')!;
    const authenticator = new Authenticator({ apiKeyPepper: PEPPER, apiKeyCacheSize: 100 });
    const authenticate = (tenant: typeof quiet, key: string) =>
      authenticator.authenticate(tenant, tenant.router.match('GET', '/keyed/x')!, { 'x-api-key': key });

    expect(authenticate(quiet, quietKey)).toMatchObject({ ok: true });
    for (let i = 0; i < 1_000; i++) authenticate(noisy, generateApiKey());
    const hashed = vi.mocked(keyHash.hashApiKey);
    hashed.mockClear();
    expect(authenticate(quiet, quietKey)).toMatchObject({ ok: true });
    expect(hashed.mock.calls.filter(([, key]) => key === quietKey)).toHaveLength(0);
  });
});
