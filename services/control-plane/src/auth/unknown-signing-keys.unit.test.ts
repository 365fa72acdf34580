import type { AddressInfo } from 'node:net';
import express from 'express';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createCallerMiddleware, NETWORKLESS_PUBLISHABLE_KEY } from './caller-middleware.js';

/**
 * Regression: with CLERK_SECRET_KEY (no CLERK_JWT_KEY) Clerk's middleware fetches the instance's JWKS
 * from its Backend API whenever a token names a `kid` it has not cached. Any client, unauthenticated,
 * could send tokens with a new made-up kid each: one Backend API call per request (with retries), ahead
 * of every rate limit, until Clerk throttled the instance's secret key and nobody could sign in.
 */
const SECRET_KEY = 'sk_live_unknown_signing_keys_0123456789abcdef';
const ISSUER = 'https://offline.clerk.accounts.dev';
let baseUrl = '';
let close: () => Promise<void> = async () => {};
let jwksFetches = 0;
let realKid = '';
let realKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

beforeAll(async () => {
  const { publicKey, privateKey } = await generateKeyPair('RS256');
  realKey = privateKey;
  const jwk = { ...(await exportJWK(publicKey)), kid: 'ins_real_key', alg: 'RS256', use: 'sig' };
  realKid = jwk.kid;
  const realFetch = globalThis.fetch;
  vi.spyOn(globalThis, 'fetch').mockImplementation(async (input, init) => {
    const url = input instanceof Request ? input.url : String(input);
    if (url.startsWith(baseUrl)) return realFetch(input, init);
    if (url.endsWith('/jwks')) {
      jwksFetches += 1;
      return Response.json({ keys: [jwk] });
    }
    throw new Error(`unexpected call to ${url}`);
  });
  const app = express();
  app.use(
    createCallerMiddleware({
      secretKey: SECRET_KEY,
      publishableKey: NETWORKLESS_PUBLISHABLE_KEY,
      issuer: ISSUER,
      authorizedParties: [],
      platformAdminUserIds: new Set(),
    }),
  );
  app.get('/', (_req, res) => {
    res.json({ ok: true });
  });
  app.use((_error: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    res.status(401).json({ error: { code: 'unauthenticated' } });
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  close = () => new Promise((resolve) => server.close(() => resolve()));
});

afterAll(async () => {
  vi.restoreAllMocks();
  await close();
});

async function forgedToken(
  kid: string,
  key?: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'],
): Promise<string> {
  const privateKey = key ?? (await generateKeyPair('RS256')).privateKey;
  return new SignJWT({ sid: 'sess_forged' })
    .setProtectedHeader({ alg: 'RS256', kid })
    .setSubject('user_forged')
    .setIssuer(ISSUER)
    .setIssuedAt()
    .setExpirationTime('1h')
    .sign(privateKey);
}

describe('session tokens naming signing keys the instance does not have', () => {
  it('a flood of made-up kids does not make one JWKS fetch per request', async () => {
    const tokens = await Promise.all(Array.from({ length: 30 }, (_, i) => forgedToken(`ins_forged_${i}`)));
    for (const token of tokens) {
      const answer = await fetch(`${baseUrl}/`, { headers: { authorization: `Bearer ${token}` } });
      expect(answer.status).toBe(401);
    }
    expect(jwksFetches).toBeLessThanOrEqual(2);
    // A token naming the instance's real key still reaches Clerk (which fetches and caches the JWKS
    // itself once) and fails its signature check there.
    const before = jwksFetches;
    for (let i = 0; i < 5; i += 1) {
      const answer = await fetch(`${baseUrl}/`, {
        headers: { authorization: `Bearer ${await forgedToken(realKid)}` },
      });
      expect(answer.status).toBe(401);
    }
    expect(jwksFetches - before).toBe(1);
    // And one the instance signed is accepted.
    const signed = await fetch(`${baseUrl}/`, {
      headers: { authorization: `Bearer ${await forgedToken(realKid, realKey)}` },
    });
    expect(signed.status).toBe(200);
  });
});
