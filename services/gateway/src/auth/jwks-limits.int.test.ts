import { createPrivateKey, generateKeyPairSync, type KeyObject, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { rsa8192TestKeys } from '@vantageedge/shared/testing/test-certificates';
import { type CryptoKey, exportJWK, generateKeyPair, jwtVerify, SignJWT } from 'jose';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  send,
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';
import {
  compileServiceAccounts,
  DEFAULT_JWKS_FETCH_POLICY,
  type JwksFetchOutcome,
  RemoteJwksRegistry,
  RemoteKeySet,
} from './jwks.js';

const ISSUER = 'https://idp.bounds.test';
const AUDIENCE = 'bounds-api';
const MiB = 1024 * 1024;
/** Padding after a valid key set: 16 times the 1 MiB bound. */
const PAD_MIB = 16;

/** What the JWKS server did with one request. */
interface Answered {
  path: string;
  /** The whole body was written (false: the client closed the connection first). */
  finished: boolean;
  closed: Promise<void>;
}

/**
 * Regression tests: a tenant's OIDC jwks_url (and Clerk's JWKS, fetched by the same code) was read
 * whole with `response.json()` and handed to jose whatever its number of keys, so one tenant could make
 * every replica buffer and parse hundreds of MiB, or scan 100,000 keys for every token. A key set is now
 * read up to 1 MiB and may list at most 100 keys; beyond either it is a failed fetch.
 */
describe('remote key sets are bounded in bytes and in keys', () => {
  let signer: CryptoKey;
  let jwk: Record<string, unknown>;
  let server: Server;
  let base: string;
  const answered: Answered[] = [];
  let origin: TestOrigin;
  let gateway: TestGateway;
  let token: string;

  /** A valid set listing k1 and `count - 1` other keys. */
  const keySet = (count: number) =>
    JSON.stringify({
      keys: [jwk, ...Array.from({ length: count - 1 }, (_, i) => ({ ...jwk, kid: `filler-${i}` }))],
    });

  beforeAll(async () => {
    const pair = await generateKeyPair('RS256');
    signer = pair.privateKey;
    jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    let flips = 0;
    server = createServer((req, res) => {
      const path = req.url ?? '/';
      const entry: Answered = {
        path,
        finished: false,
        closed: new Promise((resolve) => res.once('close', () => resolve())),
      };
      res.once('finish', () => {
        entry.finished = true;
      });
      answered.push(entry);
      const padded = () => {
        // A valid key set, followed by PAD_MIB MiB in an extra member, chunked (no Content-Length).
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write(`{"keys":[${JSON.stringify(jwk)}],"pad":"`);
        const chunk = Buffer.alloc(MiB, 'a');
        let left = PAD_MIB;
        const pump = () => {
          while (left > 0 && !res.destroyed) {
            left--;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
          if (!res.destroyed) res.end('"}');
        };
        pump();
      };
      if (path.endsWith('/padded') || path.endsWith('/v1/jwks')) padded();
      else if (path.endsWith('/declared')) {
        // Announces 200 MiB, sends the start of a set and then nothing: only the header can refuse it.
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(200 * MiB) });
        res.write(`{"keys":[${JSON.stringify(jwk)}],"pad":"`);
      } else if (path.endsWith('/keys-101')) res.end(keySet(101));
      else if (path.endsWith('/keys-100')) res.end(keySet(100));
      else if (path.endsWith('/flip')) {
        // First a good set; then one too large, then one with too many keys.
        const turn = flips++;
        if (turn === 0) res.end(keySet(1));
        else if (turn === 1) padded();
        else res.end(keySet(101));
      } else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    origin = await startTestOrigin('origin');
    gateway = await startTestGateway({ GATEWAY_AUTH_FAILURES_PER_MINUTE: '0' });
    for (const name of ['padded', 'keys-101', 'keys-100']) {
      const originId = randomUUID();
      gateway.store.apply(
        buildSnapshot({
          subdomain: name,
          origins: [{ id: originId, targets: [origin.url] }],
          routes: [{ origin_id: originId, path_pattern: '/user/*', auth_mode: 'jwt_required' }],
          settings: { oidc: { issuer: ISSUER, audience: AUDIENCE, jwks_url: `${base}/${name}` } },
        }),
      );
    }
    token = await new SignJWT({})
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setSubject('user-1')
      .setExpirationTime('5m')
      .sign(signer);
  });

  afterAll(async () => {
    await gateway?.close();
    await origin?.close();
    await new Promise<void>((resolve) => {
      server?.close(() => resolve());
      server?.closeAllConnections();
    });
  });

  async function fetchCount(registry: Registry, source: string, outcome: JwksFetchOutcome) {
    const metric = await registry.getSingleMetric('vantageedge_gateway_jwks_fetches_total')?.get();
    const value = metric?.values.find(
      (v) => v.labels['source'] === source && v.labels['outcome'] === outcome,
    );
    return value?.value ?? 0;
  }

  const answer = (path: string) => {
    const entry = answered.find((a) => a.path === path);
    expect(entry, `a request for ${path}`).toBeDefined();
    return entry as Answered;
  };

  it("refuses a tenant's key set that grows past 1 MiB, stops reading it, and counts a failed fetch", async () => {
    const response = await send(gateway, 'padded.localhost', '/user/me', {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(response.status).toBe(401);
    expect(origin.seen).toHaveLength(0);
    expect(await fetchCount(gateway.registry, 'oidc', 'failed')).toBe(1);
    expect(await fetchCount(gateway.registry, 'oidc', 'ok')).toBe(0);
    // The gateway closed the connection instead of reading the remaining MiBs.
    const padded = answer('/padded');
    await padded.closed;
    expect(padded.finished).toBe(false);
  });

  it('refuses a key set listing more than 100 keys, and accepts one with 100', async () => {
    const tooMany = await send(gateway, 'keys-101.localhost', '/user/me', {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(tooMany.status).toBe(401);
    const failed = await fetchCount(gateway.registry, 'oidc', 'failed');
    const hundred = await send(gateway, 'keys-100.localhost', '/user/me', {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(hundred.status).toBe(200);
    expect(await fetchCount(gateway.registry, 'oidc', 'failed')).toBe(failed);
    expect(await fetchCount(gateway.registry, 'oidc', 'ok')).toBe(1);
  });

  it('refuses a Content-Length over 1 MiB at once, without waiting for the body', async () => {
    const outcomes: JwksFetchOutcome[] = [];
    const keys = new RemoteKeySet(`${base}/declared`, { onFetch: (outcome) => outcomes.push(outcome) });
    const started = performance.now();
    expect(await keys.jwk('k1')).toBeUndefined();
    // The body never ends: only the 5 s fetch timeout would end a read of it.
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(outcomes).toEqual(['failed']);
    const declared = answer('/declared');
    await declared.closed;
    expect(declared.finished).toBe(false);
  });

  it('keeps serving the last good set when a refresh is too large or lists too many keys', async () => {
    const outcomes: JwksFetchOutcome[] = [];
    const keys = new RemoteKeySet(`${base}/flip`, {
      // Every use refreshes: the set is always stale and there is no cooldown.
      policy: { ...DEFAULT_JWKS_FETCH_POLICY, cooldownMs: 0, maxAgeMs: 0 },
      onFetch: (outcome) => outcomes.push(outcome),
    });
    expect(await keys.jwk('k1')).toMatchObject({ kid: 'k1' });
    // k1 is answered from the set while it is refreshed; a kid the set lacks waits for that refresh.
    for (let refresh = 0; refresh < 2; refresh++) {
      expect(await keys.jwk('k1')).toMatchObject({ kid: 'k1' });
      expect(await keys.jwk('filler-0')).toBeUndefined();
    }
    expect(await keys.jwk('k1')).toMatchObject({ kid: 'k1' });
    // The last refreshes run in the background: their outcomes come when they end.
    await expect.poll(() => outcomes.slice(0, 3)).toEqual(['ok', 'failed', 'failed']);
  });

  it("bounds Clerk's JWKS the same way (the same fetch code)", async () => {
    const registry = new Registry();
    const jwks = new RemoteJwksRegistry({ registry });
    const clerk = jwks.clerk(`${base}/clerk`, 'sk_test_bounds');
    expect(await clerk.jwk('k1')).toBeUndefined();
    expect(await fetchCount(registry, 'clerk', 'failed')).toBe(1);
    expect(await fetchCount(registry, 'clerk', 'ok')).toBe(0);
    const clerkAnswer = answer('/clerk/v1/jwks');
    await clerkAnswer.closed;
    expect(clerkAnswer.finished).toBe(false);
  });
});

/** An RSA key pair whose public exponent is about as long as its modulus (d is small instead). */
async function largeExponentKeys(): Promise<{ privateKey: KeyObject; jwk: Record<string, unknown> }> {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const base = privateKey.export({ format: 'jwk' });
  const int = (value: string | undefined) =>
    BigInt(`0x${Buffer.from(value ?? '', 'base64url').toString('hex')}`);
  const b64 = (value: bigint) => {
    const hex = value.toString(16);
    return Buffer.from(hex.length % 2 === 0 ? hex : `0${hex}`, 'hex').toString('base64url');
  };
  const [p, q] = [int(base.p), int(base.q)];
  const phi = (p - 1n) * (q - 1n);
  const inverse = (a: bigint): bigint | undefined => {
    let [r0, r1, s0, s1] = [a, phi, 1n, 0n];
    while (r1 !== 0n) {
      const k = r0 / r1;
      [r0, r1, s0, s1] = [r1, r0 - k * r1, s1, s0 - k * s1];
    }
    return r0 === 1n ? ((s0 % phi) + phi) % phi : undefined;
  };
  let d = (1n << 300n) + 1n;
  let e = inverse(d);
  while (e === undefined) {
    d += 2n;
    e = inverse(d);
  }
  const privateJwk = { ...base, e: b64(e), d: b64(d), dp: b64(d % (p - 1n)), dq: b64(d % (q - 1n)) };
  return {
    privateKey: createPrivateKey({ key: privateJwk, format: 'jwk' }),
    jwk: { kty: 'RSA', n: base.n, e: b64(e), kid: 'big-e', alg: 'RS256' },
  };
}

/**
 * Regression test: RSA verification costs in proportion to the public exponent's length, and a key set
 * is the tenant's (or its provider's) to write. A 2048-bit key with a 2048-bit exponent took 3 ms per
 * verification, a 3072-bit one 13 ms (0.04 and 0.08 ms with e = 65537), on the thread pool the
 * replica's DNS lookups and log writes share, for every token (valid ones are not refused by the
 * failure limiter). Keys with an exponent over 2^31 − 1 (Go's crypto/rsa refuses them too) are left out.
 */
describe('remote key sets leave out keys that are costly to verify with', () => {
  it('regression: does not verify with an RSA key whose exponent is over 31 bits, and keeps the others', async () => {
    const costly = await largeExponentKeys();
    const ordinary = await generateKeyPair('RS256');
    const keys = [costly.jwk, { ...(await exportJWK(ordinary.publicKey)), kid: 'ok', alg: 'RS256' }];
    const set = new RemoteKeySet('https://idp.test/jwks', {
      fetch: async () => new Response(JSON.stringify({ keys })),
    });
    const sign = (key: KeyObject | CryptoKey, kid: string) =>
      new SignJWT({}).setProtectedHeader({ alg: 'RS256', kid }).setExpirationTime('5m').sign(key);
    await expect(jwtVerify(await sign(costly.privateKey, 'big-e'), set.getKey)).rejects.toThrow();
    await expect(jwtVerify(await sign(ordinary.privateKey, 'ok'), set.getKey)).resolves.toBeDefined();
  });

  it('regression: a key whose kty names a member every object has (constructor, __proto__) is left out, the set still loads', async () => {
    // The curve check looked kty up in a plain object: the refresh threw, and no key of the set was usable.
    const ordinary = await generateKeyPair('RS256');
    const keys = [
      { kty: 'constructor', crv: 'P-256', kid: 'odd-1' },
      JSON.parse('{"kty":"__proto__","crv":"P-256","kid":"odd-2"}'),
      { ...(await exportJWK(ordinary.publicKey)), kid: 'ok', alg: 'RS256' },
    ];
    const set = new RemoteKeySet('https://idp.test/jwks', {
      fetch: async () => new Response(JSON.stringify({ keys })),
    });
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: 'RS256', kid: 'ok' })
      .setExpirationTime('5m')
      .sign(ordinary.privateKey);
    await expect(jwtVerify(token, set.getKey)).resolves.toBeDefined();
  });
});

/**
 * Regression test: RSA verification costs about the cube of the modulus' length, and a tenant's
 * jwks_url is the tenant's to write. A token naming an RSA-8192 key cost a replica ~0.3 ms per
 * verification (RSA-16384 ~1 ms; RSA-2048 ~30 µs), shared by every tenant on it; one naming a P-384
 * key (ES384) ~0.6 ms, a P-521 key (ES512) ~1.2 ms. RSA keys over 4096 bits, P-384 and P-521 keys, and
 * EC or OKP keys on curves no token algorithm verifies with, are left out of a fetched set.
 */
describe('remote key sets leave out RSA keys over 4096 bits, P-384 and P-521 keys and unsupported curves', () => {
  const ISSUER_SIZES = 'https://idp.sizes.test';
  let server: Server;
  let origin: TestOrigin;
  let gateway: TestGateway;
  const signers = new Map<string, KeyObject>();
  const served: Record<string, unknown>[] = [];

  const rsa = (bits: number, kid: string) => {
    const { privateKey, publicKey } =
      bits === 8192 ? rsa8192TestKeys() : generateKeyPairSync('rsa', { modulusLength: bits });
    signers.set(kid, privateKey);
    served.push({ ...publicKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' });
  };

  /** Each curve's token algorithm (RFC 7518 §3.4), by the kid its key is served under. */
  const ecAlgorithms = new Map<string, string>();
  const ec = (namedCurve: string, alg: string, kid: string) => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve });
    signers.set(kid, privateKey);
    ecAlgorithms.set(kid, alg);
    served.push({ ...publicKey.export({ format: 'jwk' }), kid, alg, use: 'sig' });
  };

  beforeAll(async () => {
    rsa(8192, 'rsa-8192');
    rsa(4096, 'rsa-4096');
    rsa(2048, 'rsa-2048');
    ec('P-521', 'ES512', 'ec-p521');
    ec('P-384', 'ES384', 'ec-p384');
    ec('P-256', 'ES256', 'ec-p256');
    const secp = generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).publicKey.export({ format: 'jwk' });
    const ed448 = generateKeyPairSync('ed448').publicKey.export({ format: 'jwk' });
    served.push({ ...secp, kid: 'secp256k1' }, { ...ed448, kid: 'ed448' });
    server = createServer((_req, res) => res.end(JSON.stringify({ keys: served })));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
    origin = await startTestOrigin('origin');
    gateway = await startTestGateway({ GATEWAY_AUTH_FAILURES_PER_MINUTE: '0' });
    const originId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        subdomain: 'sizes',
        origins: [{ id: originId, targets: [origin.url] }],
        routes: [{ origin_id: originId, path_pattern: '/user/*', auth_mode: 'jwt_required' }],
        settings: { oidc: { issuer: ISSUER_SIZES, audience: AUDIENCE, jwks_url: url } },
      }),
    );
  }, 60_000);

  afterAll(async () => {
    await gateway?.close();
    await origin?.close();
    await new Promise<void>((resolve) => {
      server?.close(() => resolve());
      server?.closeAllConnections();
    });
  });

  const call = async (kid: string) => {
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: ecAlgorithms.get(kid) ?? 'RS256', kid })
      .setIssuer(ISSUER_SIZES)
      .setAudience(AUDIENCE)
      .setSubject('user-1')
      .setExpirationTime('5m')
      .sign(signers.get(kid) as KeyObject);
    return send(gateway, 'sizes.localhost', '/user/me', { headers: { authorization: `Bearer ${token}` } });
  };

  it('regression: refuses a token signed with an RSA-8192 key of the set like one naming an unknown key', async () => {
    const response = await call('rsa-8192');
    expect(response.status).toBe(401);
    expect(origin.seen).toHaveLength(0);
  });

  it.each([
    ['P-384', 'ec-p384'],
    ['P-521', 'ec-p521'],
  ])(
    'regression: refuses a token signed with a %s key of the set like one naming an unknown key',
    async (_curve, kid) => {
      const seenBefore = origin.seen.length;
      const response = await call(kid);
      expect(response.status).toBe(401);
      expect(origin.seen).toHaveLength(seenBefore);
    },
  );

  it('keeps verifying with 2048- and 4096-bit RSA keys and P-256 keys of the same set', async () => {
    expect((await call('rsa-4096')).status).toBe(200);
    expect((await call('rsa-2048')).status).toBe(200);
    expect((await call('ec-p256')).status).toBe(200);
  });

  it('leaves out EC and OKP keys on curves no token algorithm uses', async () => {
    const set = new RemoteKeySet('https://idp.test/jwks', {
      fetch: async () => new Response(JSON.stringify({ keys: served })),
    });
    expect(await set.jwk('secp256k1')).toBeUndefined();
    expect(await set.jwk('ed448')).toBeUndefined();
    expect(await set.jwk('rsa-8192')).toBeUndefined();
    expect(await set.jwk('rsa-4096')).toMatchObject({ kid: 'rsa-4096' });
  });

  it("leaves the same keys out of a tenant's service accounts (stored before the control plane refused them)", () => {
    const warnings: string[] = [];
    const keys = served.map((jwk) => ({
      ...jwk,
      kty: jwk['kty'] as 'RSA' | 'EC' | 'OKP',
      kid: jwk['kid'] as string,
    }));
    const accounts = compileServiceAccounts([{ id: 'svc', keys, scopes: [] }], (message) =>
      warnings.push(message),
    );
    expect([...accounts.keys()].sort()).toEqual(['ec-p256', 'rsa-2048', 'rsa-4096']);
    expect(warnings).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          /rsa-8192 of svc ignored: its n must be a modulus of 2048 to 4096 bits, not 8192/,
        ),
        expect.stringMatching(
          /ec-p384 of svc ignored: its crv must be P-256: P-384 makes every verification costly/,
        ),
        expect.stringMatching(
          /ec-p521 of svc ignored: its crv must be P-256: P-521 makes every verification costly/,
        ),
      ]),
    );
  });
});
