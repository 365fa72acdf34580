import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK,
  OriginAddressPolicy,
} from '@vantageedge/shared/net/origin-address-policy';
import { exportJWK, generateKeyPair } from 'jose';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { DEFAULT_JWKS_FETCH_POLICY, RemoteJwksRegistry } from './jwks.js';

const ANY_TOKEN = { payload: '', signature: '' };
const COOLDOWN_MS = DEFAULT_JWKS_FETCH_POLICY.cooldownMs;

/**
 * Regression test: the key sets of one JWKS URL named with different query strings share one fetch
 * cooldown, and whichever set asked first once it passed took the fetch. A tenant naming another
 * tenant's jwks_url with a query string of its own, and sending tokens with new kids to its own host,
 * took every fetch of that URL: the other tenant's set was never fetched (on a new replica, after a
 * key rotation, for a refresh), and its users' tokens were refused. Sets refused while the cooldown
 * ran now take their turn when it passes.
 */
describe('key sets sharing a fetch cooldown take turns', () => {
  let server: Server;
  let base: string;
  const requests: string[] = [];
  let jwks: RemoteJwksRegistry;

  beforeAll(async () => {
    const { publicKey } = await generateKeyPair('RS256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'victim-1', alg: 'RS256' };
    server = createServer((req, res) => {
      requests.push(req.url ?? '/');
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: req.url === '/jwks' ? [jwk] : [] }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  beforeEach(() => {
    requests.length = 0;
    vi.useFakeTimers({ toFake: ['Date'], now: Date.parse('2026-12-04T12:00:00Z') });
    jwks = new RemoteJwksRegistry({
      addressPolicy: new OriginAddressPolicy(ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK),
    });
  });

  afterEach(() => {
    vi.useRealTimers();
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it("fetches the set of a tenant whose URL another tenant's query variant keeps asking for", async () => {
    const victim = jwks.acquire(`${base}/jwks`).getKey;
    const attacker = jwks.acquire(`${base}/jwks?attacker`).getKey;
    let kid = 0;
    const attackerAsks = () =>
      expect(attacker({ alg: 'RS256', kid: `unknown-${kid++}` }, ANY_TOKEN)).rejects.toThrow();

    await attackerAsks();
    // The cooldown the attacker's fetch started is running: the victim's first token finds no key.
    await expect(victim({ alg: 'RS256', kid: 'victim-1' }, ANY_TOKEN)).rejects.toThrow();

    for (let round = 1; round <= 3; round++) {
      vi.setSystemTime(Date.now() + COOLDOWN_MS + 1);
      // The attacker is the first to ask each time the cooldown passes.
      await attackerAsks();
      await attackerAsks();
    }
    await expect(victim({ alg: 'RS256', kid: 'victim-1' }, ANY_TOKEN)).resolves.toBeDefined();
    // Still one fetch per cooldown from the host, whichever set it was for.
    expect(requests).toHaveLength(4);
    expect(requests).toContain('/jwks');
  });

  it('gives no turn to a set released while it waited', async () => {
    const released = jwks.acquire(`${base}/jwks`).getKey;
    const kept = jwks.acquire(`${base}/jwks?kept`).getKey;
    await expect(kept({ alg: 'RS256', kid: 'a' }, ANY_TOKEN)).rejects.toThrow();
    await expect(released({ alg: 'RS256', kid: 'victim-1' }, ANY_TOKEN)).rejects.toThrow();
    jwks.release(`${base}/jwks`);
    vi.setSystemTime(Date.now() + COOLDOWN_MS + 1);
    await expect(kept({ alg: 'RS256', kid: 'b' }, ANY_TOKEN)).rejects.toThrow();
    expect(requests).toEqual(['/jwks?kept', '/jwks?kept']);
  });

  it('fetches a set for itself when no other set sharing its cooldown is waiting', async () => {
    const victim = jwks.acquire(`${base}/jwks`).getKey;
    await expect(victim({ alg: 'RS256', kid: 'victim-1' }, ANY_TOKEN)).resolves.toBeDefined();
    expect(requests).toEqual(['/jwks']);
  });
});
