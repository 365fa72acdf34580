import { randomUUID } from 'node:crypto';
import { generateApiKey, hashApiKey } from '@vantageedge/shared/domain/api-key-hash';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  send,
  startTestGateway,
  startTestOrigin,
  TEST_PEPPER,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * The gateway remembers the HMAC of presented API keys (real-shaped `ve_live_` keys, which it caches)
 * but still decides every request against the snapshot in force: a remembered key is refused as soon
 * as a snapshot revokes it or it expires, and never opens another tenant's routes.
 */
describe('API keys with remembered digests', () => {
  let origin: TestOrigin;
  let gateway: TestGateway;
  const acmeId = randomUUID();
  const globexId = randomUUID();
  const key = generateApiKey();
  const other = generateApiKey();

  function snapshot(tenantId: string, subdomain: string, version: number, apiKeys: object[]) {
    const originId = randomUUID();
    return buildSnapshot({
      tenantId,
      version,
      subdomain,
      origins: [{ id: originId, targets: [origin.url] }],
      routes: [{ origin_id: originId, path_pattern: '/keys/*', auth_mode: 'apikey_required' }],
      apiKeys: apiKeys as never,
    });
  }
  const status = async (host: string, apiKey: string) =>
    (await send(gateway, host, '/keys/x', { headers: { 'x-api-key': apiKey } })).status;

  beforeAll(async () => {
    origin = await startTestOrigin('origin');
    gateway = await startTestGateway();
    gateway.store.apply(snapshot(acmeId, 'acme', 1, [{ key_hash: hashApiKey(TEST_PEPPER, key) }]));
    gateway.store.apply(snapshot(globexId, 'globex', 1, [{ key_hash: hashApiKey(TEST_PEPPER, other) }]));
  });

  afterAll(async () => {
    await gateway?.close();
    await origin?.close();
  });

  it('accepts a remembered key again and again, and only on its own tenant', async () => {
    for (let i = 0; i < 3; i++) expect(await status('acme.localhost', key)).toBe(200);
    expect(await status('globex.localhost', key)).toBe(401);
    expect(await status('globex.localhost', other)).toBe(200);
    expect(await status('acme.localhost', other)).toBe(401);
  });

  it('refuses a remembered key at once when a new snapshot revokes it or gives it a past expiry', async () => {
    expect(await status('acme.localhost', key)).toBe(200);
    gateway.store.apply(snapshot(acmeId, 'acme', 2, []));
    const revoked = await send(gateway, 'acme.localhost', '/keys/x', { headers: { 'x-api-key': key } });
    expect(revoked.status).toBe(401);
    expect(revoked.json()).toMatchObject({ error: { code: 'invalid_api_key' } });

    gateway.store.apply(snapshot(acmeId, 'acme', 3, [{ key_hash: hashApiKey(TEST_PEPPER, key) }]));
    expect(await status('acme.localhost', key)).toBe(200);
    gateway.store.apply(
      snapshot(acmeId, 'acme', 4, [
        { key_hash: hashApiKey(TEST_PEPPER, key), expires_at: new Date(Date.now() - 1_000).toISOString() },
      ]),
    );
    const expired = await send(gateway, 'acme.localhost', '/keys/x', { headers: { 'x-api-key': key } });
    expect(expired.status).toBe(401);
    expect(expired.json()).toMatchObject({ error: { code: 'api_key_expired' } });
  });
});
