import { randomUUID } from 'node:crypto';
import { hashApiKey } from '@vantageedge/shared/domain/api-key-hash';
import { liveHeapAndBufferBytes } from '@vantageedge/shared/testing/live-memory';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
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
 * A credential the gateway remembers (a verified token, an API key's digest) is kept as a string of its
 * own. It was kept as cut from its `Authorization` header, and V8 keeps a cut as a view of the whole
 * header: a client putting 15,000 spaces after `Bearer` made every cached token or key hold 15 KB, past
 * what the caches count (the token cache's bytes, ≈ 150 B a key digest) — a tenant minting tokens with
 * its own service-account keys, or any holder of API keys, grew a replica by gigabytes at a raised
 * GATEWAY_MAX_HEADER_BYTES. A padded key presented again took over the copy cached from a plain one.
 */
const SUBDOMAIN = 'padded-credentials';
const HOST = `${SUBDOMAIN}.localhost`;
const SERVICE_ID = 'svc-padding';
const CREDENTIALS = 500;
const PAD = ' '.repeat(15_000);
/** What the padding of every credential would hold (15 KB each): the growth must stay far below it. */
const PADDING_HELD = CREDENTIALS * PAD.length;

let origin: TestOrigin;
let gateway: TestGateway;
let serviceKeys: Awaited<ReturnType<typeof generateKeyPair>>;
const apiKeys = Array.from(
  { length: 2 * CREDENTIALS },
  (_, i) => `ve_live_${String(i).padStart(6, '0')}${randomUUID().replaceAll('-', '').slice(0, 26)}`,
);

beforeAll(async () => {
  serviceKeys = await generateKeyPair('ES256');
  origin = await startTestOrigin('padded-credentials');
  gateway = await startTestGateway({});
  const originId = randomUUID();
  const serviceJwk = { ...(await exportJWK(serviceKeys.publicKey)), kid: 'svc-1', alg: 'ES256' };
  gateway.store.apply(
    buildSnapshot({
      subdomain: SUBDOMAIN,
      origins: [{ id: originId, targets: [origin.url] }],
      routes: [
        { origin_id: originId, path_pattern: '/internal/*', auth_mode: 'service' },
        { origin_id: originId, path_pattern: '/keyed/*', auth_mode: 'jwt_or_apikey' },
      ],
      apiKeys: apiKeys.map((key) => ({ key_hash: hashApiKey(TEST_PEPPER, key) })),
      settings: { service_accounts: [{ id: SERVICE_ID, keys: [serviceJwk] }] },
    }),
  );
}, 60_000);

afterAll(async () => {
  await gateway?.close();
  await origin?.close();
});

const serviceToken = (i: number) => {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ n: i })
    .setProtectedHeader({ alg: 'ES256', kid: 'svc-1' })
    .setIssuer(SERVICE_ID)
    .setSubject(SERVICE_ID)
    .setAudience(HOST)
    .setIssuedAt(now)
    .setExpirationTime(now + 120)
    .sign(serviceKeys.privateKey);
};

const served = async (path: string, authorization: string) => {
  const answer = await send(gateway, HOST, path, { headers: { authorization } });
  expect(answer.status, answer.text).toBe(200);
};

/** What the process holds more after `requests` (the harness's own request logs emptied). */
async function heldAfter(requests: (i: number) => Promise<void>): Promise<number> {
  origin.seen.length = 0;
  gateway.logLines.length = 0;
  const before = liveHeapAndBufferBytes();
  for (let i = 0; i < CREDENTIALS; i++) await requests(i);
  origin.seen.length = 0;
  gateway.logLines.length = 0;
  return liveHeapAndBufferBytes() - before;
}

describe('credentials padded with spaces after "Bearer"', () => {
  it('cost the token cache no more than the token', async () => {
    const tokens = await Promise.all(Array.from({ length: 2 * CREDENTIALS }, (_, i) => serviceToken(i)));
    const plain = await heldAfter((i) => served('/internal/x', `Bearer ${tokens[i]}`));
    const padded = await heldAfter((i) => served('/internal/x', `Bearer${PAD}${tokens[CREDENTIALS + i]}`));
    expect(padded - plain).toBeLessThan(PADDING_HELD / 4);
  }, 120_000);

  it('cost the API-key digests no more than the key, also when a cached key is presented padded', async () => {
    const first = await heldAfter((i) => served('/keyed/x', `Bearer${PAD}${apiKeys[i]}`));
    expect(first).toBeLessThan(PADDING_HELD / 4);
    await heldAfter((i) => served('/keyed/x', `Bearer ${apiKeys[CREDENTIALS + i]}`));
    const hits = await heldAfter((i) => served('/keyed/x', `Bearer${PAD}${apiKeys[CREDENTIALS + i]}`));
    expect(hits).toBeLessThan(PADDING_HELD / 4);
  }, 120_000);
});
