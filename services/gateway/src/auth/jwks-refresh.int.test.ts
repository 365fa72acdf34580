import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type CryptoKey, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  send,
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { DEFAULT_JWKS_FETCH_POLICY, type JwksFetchOutcome, RemoteKeySet } from './jwks.js';

const ISSUER = 'https://idp.refresh.test';
const AUDIENCE = 'refresh-api';

/** A fetch the key-set server holds open until the test releases it. */
interface HeldFetch {
  release: () => void;
  /** The gateway has not closed the connection (a fetch timeout would have). */
  open: boolean;
}

/**
 * Regression tests: a key set past its refresh age was refetched while every token checked against it
 * waited, up to the 5 s fetch timeout, even when the set already listed the token's kid. Clerk's set is
 * shared by every tenant of a replica, so a slow Clerk JWKS held every tenant's new tokens at each
 * refresh (and a tenant's slow jwks_url its own users). A known kid is now verified with the cached set
 * while one refresh runs in the background; only a kid the set does not list waits for the fetch.
 */
describe('a stale key set keeps verifying the kids it lists while it is refreshed', () => {
  const signers = new Map<string, CryptoKey>();
  const published = new Map<string, Record<string, unknown>>();
  /** The kids the provider lists now. */
  let listed: string[] = ['k1'];
  /** While true, fetches wait for release() (see `held`). */
  let holding = false;
  /** While true, the provider answers 503. */
  const failing = false;
  const held: HeldFetch[] = [];
  let fetches = 0;
  let server: Server;
  let url: string;
  let origin: TestOrigin;
  let gateway: TestGateway;
  let subjects = 0;

  beforeAll(async () => {
    for (const kid of ['k1', 'k2', 'forged']) {
      const pair = await generateKeyPair('RS256');
      signers.set(kid, pair.privateKey);
      published.set(kid, { ...(await exportJWK(pair.publicKey)), kid, alg: 'RS256', use: 'sig' });
    }
    server = createServer((_req, res) => {
      fetches++;
      const answer = () => {
        if (failing) return void res.writeHead(503).end();
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ keys: listed.map((kid) => published.get(kid)) }));
      };
      if (!holding) return answer();
      const fetch: HeldFetch = { release: answer, open: true };
      res.once('close', () => {
        fetch.open = false;
      });
      held.push(fetch);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;

    origin = await startTestOrigin('origin');
    // Every use of the set is past its refresh age, and nothing waits for a cooldown.
    gateway = await startTestGateway(
      { GATEWAY_AUTH_FAILURES_PER_MINUTE: '0' },
      { jwksPolicy: { maxAgeMs: 0, cooldownMs: 0 } },
    );
    const originId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        subdomain: 'refresh',
        origins: [{ id: originId, targets: [origin.url] }],
        routes: [{ origin_id: originId, path_pattern: '/user/*', auth_mode: 'jwt_required' }],
        settings: { oidc: { issuer: ISSUER, audience: AUDIENCE, jwks_url: url } },
      }),
    );
  });

  afterAll(async () => {
    holding = false;
    for (const fetch of held) fetch.release();
    await gateway?.close();
    await origin?.close();
    await new Promise<void>((resolve) => {
      server?.close(() => resolve());
      server?.closeAllConnections();
    });
  });

  /** A request with a new token (never cached by the gateway) signed with the key named `kid`. */
  async function call(kid: string) {
    subjects++;
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: 'RS256', kid })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setSubject(`user-${subjects}`)
      .setExpirationTime('5m')
      .sign(signers.get(kid) as CryptoKey);
    return send(gateway, 'refresh.localhost', '/user/me', { headers: { authorization: `Bearer ${token}` } });
  }

  async function untilHeld(count: number) {
    while (held.length < count) await new Promise((resolve) => setTimeout(resolve, 10));
  }

  function releaseAll() {
    holding = false;
    for (const fetch of held.splice(0)) fetch.release();
  }

  it('regression: answers a token whose kid the set lists while the key-set server holds the refresh open', async () => {
    expect((await call('k1')).status).toBe(200);
    const before = fetches;
    holding = true;
    expect((await call('k1')).status).toBe(200);
    // Answered before the key-set server was: the refresh is still open (not timed out, not answered).
    expect(held).toHaveLength(1);
    expect(held[0]?.open, 'the refresh was still open when the token was answered').toBe(true);
    // More tokens meanwhile start no second fetch of the same set.
    expect((await call('k1')).status).toBe(200);
    expect((await call('k1')).status).toBe(200);
    expect(fetches - before).toBe(1);
    releaseAll();
  });

  it('makes a token naming a kid the set lacks wait for the refresh: a rotated-in key is served, a forged one refused', async () => {
    expect((await call('k1')).status).toBe(200);
    listed = ['k1', 'k2'];
    holding = true;
    const rotated = call('k2');
    const forged = call('forged');
    await untilHeld(1);
    // The key the set lists is still verified at once.
    expect((await call('k1')).status).toBe(200);
    expect(held[0]?.open).toBe(true);
    releaseAll();
    // k2 is known only from the refreshed set: that token waited for it.
    expect((await rotated).status).toBe(200);
    expect((await forged).status).toBe(401);
  });
});

/**
 * A key set is used without a successful refresh only up to its usable age (24 h by default): past it
 * a token waits for a fetch as if the set had never been fetched, and a failed fetch leaves no key, so
 * a key the provider removed stops verifying even while the provider cannot be reached.
 */
describe('a key set older than its usable age is not used without a successful refresh', () => {
  let server: Server;
  let url: string;
  let listed: string[] = ['k1'];
  let failing = false;
  const keys = new Map<string, Record<string, unknown>>();

  beforeAll(async () => {
    for (const kid of ['k1', 'k2']) {
      const { publicKey } = await generateKeyPair('RS256');
      keys.set(kid, { ...(await exportJWK(publicKey)), kid, alg: 'RS256' });
    }
    server = createServer((_req, res) => {
      if (failing) return void res.writeHead(503).end();
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: listed.map((kid) => keys.get(kid)) }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('regression: refuses every kid of an expired set whose refresh fails, and serves it again once a refresh succeeds', async () => {
    const outcomes: JwksFetchOutcome[] = [];
    const set = new RemoteKeySet(url, {
      // Every use is past both the refresh age and the usable age.
      policy: { ...DEFAULT_JWKS_FETCH_POLICY, cooldownMs: 0, maxAgeMs: 0, maxUsableAgeMs: 0 },
      onFetch: (outcome) => outcomes.push(outcome),
    });
    expect(await set.jwk('k1')).toMatchObject({ kid: 'k1' });
    failing = true;
    expect(await set.jwk('k1')).toBeUndefined();
    failing = false;
    expect(await set.jwk('k1')).toMatchObject({ kid: 'k1' });
    listed = ['k2'];
    expect(await set.jwk('k1')).toBeUndefined();
    expect(await set.jwk('k2')).toMatchObject({ kid: 'k2' });
    expect(outcomes).toEqual(['ok', 'failed', 'ok', 'ok', 'ok']);
  });

  it('within its usable age keeps serving the last good set while refreshes fail', async () => {
    listed = ['k1'];
    failing = false;
    const set = new RemoteKeySet(url, {
      policy: { ...DEFAULT_JWKS_FETCH_POLICY, cooldownMs: 0, maxAgeMs: 0 },
    });
    expect(await set.jwk('k1')).toMatchObject({ kid: 'k1' });
    failing = true;
    for (let i = 0; i < 3; i++) expect(await set.jwk('k1')).toMatchObject({ kid: 'k1' });
    failing = false;
  });
});
