import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { liveHeapBytes } from '@vantageedge/shared/testing/live-memory';
import { exportJWK, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_JWKS_FETCH_POLICY, RemoteKeySet } from './jwks.js';

/** Kids as a token header carries them: each its own string, about 10 KB (a 16 KB header holds one). */
const longKid = () => randomBytes(7_500).toString('base64url');

/**
 * Regression test: a key set remembers the kids a fresh fetch did not list (so repeating one never
 * refetches), and every token waiting for a fetch had its kid remembered, at most 10,000 of them
 * whatever their length. A client sending tokens with 10 KB kids while a fetch was pending (one it can
 * start itself once per cooldown, and a tenant's slow identity provider keeps pending for seconds) made
 * every replica keep 100 MB per key set — Clerk's, which every tenant shares, and each tenant's own.
 * The remembered kids are now bounded in characters too, and a kid that is not a string names no key.
 */
describe("a key set's memory of unknown kids is bounded in bytes", () => {
  let server: Server;
  let url: string;
  let jwk: Record<string, unknown>;
  /** While true, a fetch is answered only by release(). */
  let holding = false;
  /** Answers the fetch being held. */
  let release: () => void = () => {};
  let fetches = 0;

  beforeAll(async () => {
    const { publicKey } = await generateKeyPair('RS256');
    jwk = { ...(await exportJWK(publicKey)), kid: 'idp-1', alg: 'RS256' };
    server = createServer((_req, res) => {
      fetches++;
      const answer = () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ keys: [jwk] }));
      };
      // A held fetch is answered when the test says so: every lookup meanwhile waits for it.
      if (holding) release = answer;
      else answer();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  /** Lookups of `count` kids made while one fetch is pending, answered once they all wait for it. */
  async function lookUpWhileFetching(keys: RemoteKeySet, kids: () => unknown, count: number) {
    const before = fetches;
    holding = true;
    const lookups = Array.from({ length: count }, () => keys.jwk(kids() as string));
    while (fetches === before) await new Promise((resolve) => setTimeout(resolve, 10));
    holding = false;
    release();
    return Promise.all(lookups);
  }

  it('keeps at most about 1 MB of unknown kids, however long the kids of the tokens waiting for a fetch', async () => {
    const keys = new RemoteKeySet(url, { policy: { ...DEFAULT_JWKS_FETCH_POLICY, cooldownMs: 0 } });
    const before = liveHeapBytes();
    const found = await lookUpWhileFetching(keys, longKid, 3_000);
    expect(found.every((key) => key === undefined)).toBe(true);
    const grown = liveHeapBytes() - before;
    // 3,000 kids of 10 KB are 30 MB; what is kept of them stays within the bound (1 MiB of characters).
    expect(grown, `${(grown / 1e6).toFixed(1)} MB kept`).toBeLessThan(8_000_000);
    // The set itself is served as before.
    expect(await keys.jwk('idp-1')).toMatchObject({ kid: 'idp-1' });
  });

  it('still remembers ordinary unknown kids, so repeating one does not refetch', async () => {
    const keys = new RemoteKeySet(url, { policy: { ...DEFAULT_JWKS_FETCH_POLICY, cooldownMs: 0 } });
    await lookUpWhileFetching(keys, () => 'forged-kid', 1);
    const after = fetches;
    for (let i = 0; i < 5; i++) expect(await keys.jwk('forged-kid')).toBeUndefined();
    expect(fetches).toBe(after);
  });

  it('takes a kid that is not a string (a JSON object or number in the header) as naming no key', async () => {
    const keys = new RemoteKeySet(url, { policy: { ...DEFAULT_JWKS_FETCH_POLICY, cooldownMs: 0 } });
    expect(await keys.jwk('idp-1')).toMatchObject({ kid: 'idp-1' });
    const after = fetches;
    // The set is fresh: a kid that can name no key does not make it fetched again, nor is it kept.
    for (const kid of [{ id: 'x' }, ['idp-1'], 7, null]) {
      expect(await keys.jwk(kid as unknown as string)).toBeUndefined();
      await expect(
        keys.getKey({ alg: 'RS256', kid: kid as unknown as string }, { payload: '', signature: '' }),
      ).rejects.toThrow();
    }
    expect(fetches).toBe(after);
  });
});
