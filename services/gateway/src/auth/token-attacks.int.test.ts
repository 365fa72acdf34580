import { constants, createHmac, createSign, KeyObject, randomUUID, sign } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type ClerkTestKeys,
  createClerkTestKeys,
  signClerkToken,
} from '@vantageedge/shared/testing/clerk-tokens';
import { type CryptoKey, exportJWK, exportSPKI, generateKeyPair, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type GatewayResponse,
  send,
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';

/** One identity provider two tenants trust (as two apps of Google, Auth0 or Okta share its issuer). */
const SHARED_ISSUER = 'https://idp.shared.test';
const CLERK_TEST_ISSUER = 'https://offline.clerk.accounts.dev';

const part = (value: unknown) =>
  Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);

/** A compact JWS over exactly this header and payload; the signature is the caller's. */
function compact(header: unknown, payload: unknown, sign: (input: string) => Buffer | string): string {
  const input = `${part(header)}.${part(payload)}`;
  const signature = sign(input);
  return `${input}.${typeof signature === 'string' ? signature : signature.toString('base64url')}`;
}

const rs256 = (key: CryptoKey) => (input: string) =>
  createSign('sha256').update(input).sign(KeyObject.from(key));
const ps256 = (key: CryptoKey) => (input: string) =>
  createSign('sha256')
    .update(input)
    .sign({ key: KeyObject.from(key), padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 });
const hs256 = (secret: string) => (input: string) => createHmac('sha256', secret).update(input).digest();

/**
 * Tokens a hostile client shapes to be taken for another: algorithm confusion, keys and key URLs named
 * in the header, claims that are missing or meant for another tenant of the same issuer, malformed
 * encodings. Each is refused with 401 and never reaches the origin; only the one real token passes.
 */
describe('bearer tokens shaped to be taken for another', () => {
  let origin: TestOrigin;
  let gateway: TestGateway;
  let clerk: ClerkTestKeys;
  let idp: Awaited<ReturnType<typeof generateKeyPair>>;
  let idpEc: Awaited<ReturnType<typeof generateKeyPair>>;
  let attacker: Awaited<ReturnType<typeof generateKeyPair>>;
  /** The provider's key for encryption, listed in its set as `use: enc` and as `key_ops: [encrypt]`. */
  let idpEnc: Awaited<ReturnType<typeof generateKeyPair>>;
  /** A calling service's registered key (no `alg` declared, as the control plane allows). */
  let service: Awaited<ReturnType<typeof generateKeyPair>>;
  /** The same service's Ed25519 key, registered as `alg: EdDSA`. */
  let serviceEd: Awaited<ReturnType<typeof generateKeyPair>>;
  let idpJwk: JWK;
  let jwksServer: Server;
  /** Where a token's header tells the verifier to fetch keys: must never be asked. */
  let attackerServer: Server;
  const attackerRequests: string[] = [];

  const claims = (extra: Record<string, unknown> = {}) => ({
    iss: SHARED_ISSUER,
    sub: 'user-1',
    aud: 'app-alpha',
    iat: now(),
    exp: now() + 300,
    ...extra,
  });
  const idpToken = (extra: Record<string, unknown> = {}, header: Record<string, unknown> = {}) =>
    compact({ alg: 'RS256', kid: 'idp-rsa', ...header }, claims(extra), rs256(idp.privateKey));

  const call = (host: string, token: string) =>
    send(gateway, `${host}.localhost`, '/api/x', { headers: { authorization: `Bearer ${token}` } });

  async function expectRefused(host: string, tokens: Record<string, string>): Promise<void> {
    const before = origin.seen.length;
    const answers: Record<string, [number, unknown]> = {};
    for (const [name, token] of Object.entries(tokens)) {
      const response: GatewayResponse = await call(host, token);
      answers[name] = [response.status, response.json()['error']];
    }
    for (const [name, [status, error]] of Object.entries(answers)) {
      expect([name, status], JSON.stringify(error)).toEqual([name, 401]);
      expect(error).toMatchObject({ code: expect.stringMatching(/^(invalid_token|token_expired)$/) });
    }
    expect(origin.seen.length).toBe(before);
  }

  beforeAll(async () => {
    origin = await startTestOrigin('origin');
    clerk = await createClerkTestKeys();
    idp = await generateKeyPair('RS256', { extractable: true });
    idpEc = await generateKeyPair('ES256', { extractable: true });
    attacker = await generateKeyPair('RS256', { extractable: true });
    idpEnc = await generateKeyPair('RS256', { extractable: true });
    service = await generateKeyPair('RS256', { extractable: true });
    serviceEd = await generateKeyPair('Ed25519', { extractable: true });
    idpJwk = { ...(await exportJWK(idp.publicKey)), kid: 'idp-rsa', alg: 'RS256', use: 'sig' };
    const ecJwk = { ...(await exportJWK(idpEc.publicKey)), kid: 'idp-ec' };
    const encJwk = await exportJWK(idpEnc.publicKey);
    const encryptionKeys = [
      { ...encJwk, kid: 'idp-enc', use: 'enc' },
      { ...encJwk, kid: 'idp-wrap', key_ops: ['encrypt', 'wrapKey'] },
    ];
    const attackerJwk = { ...(await exportJWK(attacker.publicKey)), kid: 'idp-rsa' };
    jwksServer = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      // Another tenant's set on the same server: the attacker's key under the provider's kid.
      if (req.url === '/impostor/jwks') res.end(JSON.stringify({ keys: [attackerJwk] }));
      else res.end(JSON.stringify({ keys: [idpJwk, ecJwk, ...encryptionKeys] }));
    });
    attackerServer = createServer((req, res) => {
      attackerRequests.push(req.url ?? '');
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: [attackerJwk] }));
    });
    for (const server of [jwksServer, attackerServer]) {
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    }
    const serviceJwk = { ...(await exportJWK(service.publicKey)), kid: 'svc-1' };
    const serviceEdJwk = { ...(await exportJWK(serviceEd.publicKey)), kid: 'svc-ed', alg: 'EdDSA' };
    gateway = await startTestGateway({
      CLERK_JWT_KEY: clerk.publicKeyPem,
      GATEWAY_AUTH_FAILURES_PER_MINUTE: '0',
    });
    const jwksOrigin = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}`;
    const tenant = (
      subdomain: string,
      oidc: { issuer: string; audience: string } | null,
      jwksUrl = `${jwksOrigin}/jwks`,
    ) => {
      const originId = randomUUID();
      gateway.store.apply(
        buildSnapshot({
          tenantId: randomUUID(),
          subdomain,
          clerkOrgId: `org_${subdomain}`,
          origins: [{ id: originId, targets: [origin.url] }],
          routes: [
            { origin_id: originId, path_pattern: '/api/*', auth_mode: 'jwt_required' },
            { origin_id: originId, path_pattern: '/internal/*', auth_mode: 'service' },
          ],
          settings: {
            ...(oidc ? { oidc: { ...oidc, jwks_url: jwksUrl } } : {}),
            service_accounts: [{ id: 'billing', keys: [serviceJwk, serviceEdJwk], scopes: [] }],
          },
        }),
      );
    };
    tenant('alpha', { issuer: SHARED_ISSUER, audience: 'app-alpha' });
    tenant('beta', { issuer: SHARED_ISSUER, audience: 'app-beta' });
    tenant('gamma', null);
    // Names beta's issuer and audience, with a key set of its own (the attacker's).
    tenant('delta', { issuer: SHARED_ISSUER, audience: 'app-beta' }, `${jwksOrigin}/impostor/jwks`);
  });

  afterAll(async () => {
    await gateway?.close();
    await origin?.close();
    for (const server of [jwksServer, attackerServer]) {
      server?.closeAllConnections();
      await new Promise((resolve) => server?.close(resolve));
    }
  });

  it("accepts the provider's own token (the baseline every other case departs from)", async () => {
    const response = await call('alpha', idpToken());
    expect(response.status, response.text).toBe(200);
    const ec = compact({ alg: 'ES256', kid: 'idp-ec' }, claims(), (input) =>
      createSign('sha256')
        .update(input)
        .sign({ key: KeyObject.from(idpEc.privateKey), dsaEncoding: 'ieee-p1363' }),
    );
    expect((await call('alpha', ec)).status).toBe(200);
  });

  it('refuses algorithm confusion: HS256 keyed with the public key, alg none, an alg the key does not declare', async () => {
    const pem = await exportSPKI(idp.publicKey);
    await expectRefused('alpha', {
      'HS256 keyed with the PEM': compact({ alg: 'HS256', kid: 'idp-rsa' }, claims(), hs256(pem)),
      'HS256 keyed with the JWK': compact(
        { alg: 'HS256', kid: 'idp-rsa' },
        claims(),
        hs256(JSON.stringify(idpJwk)),
      ),
      'HS256 keyed with n': compact({ alg: 'HS256', kid: 'idp-rsa' }, claims(), hs256(String(idpJwk.n))),
      'alg none': compact({ alg: 'none', kid: 'idp-rsa' }, claims(), () => ''),
      'alg NONE': compact({ alg: 'NONE', kid: 'idp-rsa' }, claims(), () => ''),
      'PS256 with a key declared RS256': compact(
        { alg: 'PS256', kid: 'idp-rsa' },
        claims(),
        ps256(idp.privateKey),
      ),
      'RS256 naming the EC key': idpToken({}, { kid: 'idp-ec' }),
    });
    // The same against the Clerk key (a tenant without a provider of its own).
    await expectRefused('gamma', {
      'HS256 keyed with the Clerk PEM': compact(
        { alg: 'HS256', kid: clerk.kid },
        { iss: CLERK_TEST_ISSUER, sub: 'user_x', o: { id: 'org_gamma' }, iat: now(), exp: now() + 300 },
        hs256(clerk.publicKeyPem),
      ),
      'alg none as Clerk': compact(
        { alg: 'none' },
        { iss: CLERK_TEST_ISSUER, sub: 'user_x', o: { id: 'org_gamma' }, exp: now() + 300 },
        () => '',
      ),
    });
    const clerkMember = await signClerkToken(clerk, { userId: 'user_x', orgId: 'org_gamma' });
    expect((await call('gamma', clerkMember)).status).toBe(200);
  });

  it("refuses algorithm confusion on a service route: HS256 keyed with the service's public key, alg none", async () => {
    const serviceClaims = () => ({
      iss: 'billing',
      sub: 'billing',
      aud: 'alpha.localhost',
      iat: now(),
      exp: now() + 60,
    });
    const callService = (token: string) =>
      send(gateway, 'alpha.localhost', '/internal/x', { headers: { authorization: `Bearer ${token}` } });
    const own = await callService(
      compact({ alg: 'RS256', kid: 'svc-1' }, serviceClaims(), rs256(service.privateKey)),
    );
    expect(own.status, own.text).toBe(200);
    const pem = await exportSPKI(service.publicKey);
    const jwk = JSON.stringify({ ...(await exportJWK(service.publicKey)), kid: 'svc-1' });
    const before = origin.seen.length;
    for (const token of [
      compact({ alg: 'HS256', kid: 'svc-1' }, serviceClaims(), hs256(pem)),
      compact({ alg: 'HS256', kid: 'svc-1' }, serviceClaims(), hs256(jwk)),
      compact({ alg: 'none', kid: 'svc-1' }, serviceClaims(), () => ''),
      compact({ alg: 'PS256', kid: 'svc-1' }, serviceClaims(), ps256(attacker.privateKey)),
      compact(
        { alg: 'RS256', kid: 'svc-1', jwk: await exportJWK(attacker.publicKey) },
        serviceClaims(),
        rs256(attacker.privateKey),
      ),
    ]) {
      const response = await callService(token);
      expect(response.status, response.text).toBe(401);
      expect(response.json()).toMatchObject({ error: { code: 'invalid_token' } });
    }
    expect(origin.seen.length).toBe(before);
  });

  it('refuses alg none in any case, an alg spelled in another case, and a key declared for another alg name', async () => {
    const serviceClaims = { sub: 'billing', aud: 'alpha.localhost', iat: now(), exp: now() + 60 };
    const edSigned = (alg: string) =>
      compact({ alg, kid: 'svc-ed' }, serviceClaims, (input) =>
        sign(null, Buffer.from(input), KeyObject.from(serviceEd.privateKey)),
      );
    const callService = (token: string) =>
      send(gateway, 'alpha.localhost', '/internal/x', { headers: { authorization: `Bearer ${token}` } });
    expect((await callService(edSigned('EdDSA'))).status).toBe(200);
    await expectRefused('alpha', {
      ...Object.fromEntries(
        ['None', 'nOnE', ''].map((alg) => [
          `alg "${alg}"`,
          compact({ alg, kid: 'idp-rsa' }, claims(), () => ''),
        ]),
      ),
      'alg rs256 (lower case)': compact({ alg: 'rs256', kid: 'idp-rsa' }, claims(), rs256(idp.privateKey)),
    });
    const before = origin.seen.length;
    for (const token of [
      compact({ alg: 'None', kid: 'svc-1' }, serviceClaims, () => ''),
      compact({ alg: 'rs256', kid: 'svc-1' }, serviceClaims, rs256(service.privateKey)),
      // Ed25519 is jose's other name for EdDSA: the key was registered for EdDSA only.
      edSigned('Ed25519'),
    ]) {
      const response = await callService(token);
      expect(response.status, response.text).toBe(401);
      expect(response.json()).toMatchObject({ error: { code: 'invalid_token' } });
    }
    expect(origin.seen.length).toBe(before);
  });

  it("refuses claims of another type, an unencoded payload or claims that are not strict UTF-8, signed with the provider's key though they are", async () => {
    const header = JSON.stringify({ alg: 'RS256', kid: 'idp-rsa' });
    const claimsText = JSON.stringify(claims());
    const signed = (headerText: string, payload: Buffer | string) => {
      const input = `${part(headerText)}.${Buffer.from(payload).toString('base64url')}`;
      return `${input}.${rs256(idp.privateKey)(input).toString('base64url')}`;
    };
    const unencoded = (extra: Record<string, unknown>) => {
      const protectedHeader = part({ alg: 'RS256', kid: 'idp-rsa', ...extra });
      return `${protectedHeader}.${claimsText}.${rs256(idp.privateKey)(`${protectedHeader}.${claimsText}`).toString('base64url')}`;
    };
    await expectRefused('alpha', {
      'exp a list': idpToken({ exp: [now() + 300] }),
      'exp true': idpToken({ exp: true }),
      'exp null': idpToken({ exp: null }),
      'nbf as text': idpToken({ nbf: String(now()) }),
      'iat as text': idpToken({ iat: String(now()) }),
      'sub missing': idpToken({ sub: undefined }),
      'sub a number': idpToken({ sub: 1 }),
      'iss listed in an array': idpToken({ iss: [SHARED_ISSUER] }),
      'aud an object': idpToken({ aud: { 'app-alpha': true } }),
      'b64 false, payload not encoded': unencoded({ b64: false }),
      'b64 false, crit, payload not encoded': unencoded({ b64: false, crit: ['b64'] }),
      'claims with invalid UTF-8': signed(
        header,
        Buffer.concat([
          Buffer.from(claimsText.slice(0, -1)),
          Buffer.from(',"x":"\xff"}', 'latin1'), // a byte no UTF-8 text has
        ]),
      ),
      'claims in an array': signed(header, `[${claimsText}]`),
    });
  });

  it('trusts no key nor key URL the token names (jwk, jku, x5u, x5c), and fetches none', async () => {
    const attackerUrl = `http://127.0.0.1:${(attackerServer.address() as AddressInfo).port}/jwks`;
    const attackerJwk = await exportJWK(attacker.publicKey);
    const forged = (header: Record<string, unknown>) =>
      compact({ alg: 'RS256', kid: 'idp-rsa', ...header }, claims(), rs256(attacker.privateKey));
    await expectRefused('alpha', {
      'embedded jwk': forged({ jwk: attackerJwk }),
      'embedded jwk, no kid': forged({ kid: undefined, jwk: attackerJwk }),
      jku: forged({ jku: attackerUrl }),
      x5u: forged({ x5u: attackerUrl }),
      x5c: forged({ x5c: ['MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA'] }),
    });
    expect(attackerRequests).toEqual([]);
  });

  it('refuses a key the provider lists for encryption, and header extensions the gateway does not know (crit)', async () => {
    const signedWithEncryptionKey = (kid: string) =>
      compact({ alg: 'RS256', kid }, claims(), rs256(idpEnc.privateKey));
    await expectRefused('alpha', {
      'key listed as use enc': signedWithEncryptionKey('idp-enc'),
      'key listed with key_ops encrypt': signedWithEncryptionKey('idp-wrap'),
      'crit naming an unknown extension': idpToken({}, { crit: ['x-binding'], 'x-binding': 'a' }),
      'crit naming a standard member': idpToken({}, { crit: ['kid'] }),
      'crit empty': idpToken({}, { crit: [] }),
      'unencoded payload (b64 false)': idpToken({}, { b64: false, crit: ['b64'] }),
      'JWE algorithm in a JWS': idpToken({}, { alg: 'RSA-OAEP-256', enc: 'A256GCM' }),
    });
  });

  it('refuses a kid of path or SQL text like any unknown kid', async () => {
    await expectRefused('alpha', {
      path: idpToken({}, { kid: '../../../../etc/passwd' }),
      sql: idpToken({}, { kid: "idp-rsa' OR '1'='1" }),
      nul: idpToken({}, { kid: 'idp-rsa\u0000' }),
      object: idpToken({}, { kid: { $ne: null } }),
    });
  });

  it('refuses a token without exp or aud, or before its nbf', async () => {
    await expectRefused('alpha', {
      'no exp': idpToken({ exp: undefined }),
      'exp as text': idpToken({ exp: String(now() + 300) }),
      'no aud': idpToken({ aud: undefined }),
      'empty aud list': idpToken({ aud: [] }),
      'nbf in a minute': idpToken({ nbf: now() + 60 }),
      'expired beyond the 5 s clock tolerance': idpToken({ exp: now() - 10 }),
    });
  });

  it("refuses at one tenant a token of the same issuer minted for another tenant's audience", async () => {
    // alpha's users' tokens are for app-alpha: beta trusts the same issuer but not that audience.
    await expectRefused('beta', { "alpha's token": idpToken() });
    // A tenant without a provider of its own takes it for a Clerk token, which it is not.
    await expectRefused('gamma', { "alpha's token": idpToken() });
    // A token the provider minted for both apps is both apps' (RFC 7519 §4.1.3).
    expect((await call('beta', idpToken({ aud: ['app-alpha', 'app-beta'] }))).status).toBe(200);
    expect((await call('beta', idpToken({ aud: 'app-beta' }))).status).toBe(200);
  });

  it("verifies each tenant's tokens with its own jwks_url: a tenant naming another's issuer and audience mints nothing for it", async () => {
    const forged = compact(
      { alg: 'RS256', kid: 'idp-rsa' },
      claims({ aud: 'app-beta' }),
      rs256(attacker.privateKey),
    );
    // delta's own set is the attacker's, so at delta (and only there) the attacker's token is valid.
    expect((await call('delta', forged)).status).toBe(200);
    await expectRefused('beta', { "delta's token": forged });
    await expectRefused('delta', { "the provider's token for beta": idpToken({ aud: 'app-beta' }) });
    expect((await call('beta', idpToken({ aud: 'app-beta' }))).status).toBe(200);
  });

  it('refuses malformed compact tokens with 401, never a 5xx', async () => {
    const [header, payload, signature] = idpToken().split('.') as [string, string, string];
    await expectRefused('alpha', {
      'two parts': `${header}.${payload}`,
      'four parts': `${header}.${payload}.${signature}.x`,
      'five parts (JWE)': `${header}.${payload}.${signature}.x.y`,
      'padded signature': `${header}.${payload}.${signature}=`,
      'padded payload': `${header}=.${payload}.${signature}`,
      'invalid character': `${header}.${payload}.${signature.slice(0, 10)}!${signature.slice(11)}`,
      'header not JSON': `${part('{"alg":')}.${payload}.${signature}`,
      'header an array': `${part([])}.${payload}.${signature}`,
      'duplicate alg, none last': `${Buffer.from('{"alg":"RS256","kid":"idp-rsa","alg":"none"}').toString('base64url')}.${payload}.${signature}`,
    });
  });

  /**
   * Regression: the 401 named the repeated member in its WWW-Authenticate as the token spells it, before
   * any signature check: a `"` ended the error_description and added parameters of the client's choosing
   * to the challenge, a line break left the 401 without any challenge, non-ASCII text was garbled.
   */
  it('regression: a repeated member name of any text is refused with a well-formed challenge', async () => {
    const [, payload, signature] = idpToken().split('.') as [string, string, string];
    const repeated = (name: string) =>
      `${Buffer.from(`{"alg":"RS256","kid":"idp-rsa",${name}:1,${name}:2}`).toString('base64url')}.${payload}.${signature}`;
    const names = [
      '"x\\\\"',
      '"x\\", scope=\\"admin"',
      '"x\\nSet-Cookie: a=b"',
      '"é"',
      '"\\u2028\\ud83d\\ude00"',
    ];
    await expectRefused('alpha', Object.fromEntries(names.map((name) => [name, repeated(name)])));
    for (const name of names) {
      const response = await call('alpha', repeated(name));
      expect(response.headers['www-authenticate'], name).toMatch(
        /^Bearer realm="vantageedge", error="invalid_token", error_description="[^"\\\\]*"$/,
      );
    }
  });

  // RFC 7515 §4 and RFC 7519 §4: names in a JOSE header and in the claims must be unique. jose reads the
  // last of a repeated name, an origin reading the forwarded token may read the first.
  it('regression: refuses a well-signed token naming a header parameter or a claim twice, whichever comes last', async () => {
    const resigned = (
      token: string,
      header: string,
      payload: string | undefined,
      sign: (input: string) => Buffer,
    ) => {
      const [, ownPayload] = token.split('.') as [string, string];
      const input = `${part(header)}.${payload === undefined ? ownPayload : part(payload)}`;
      return `${input}.${sign(input).toString('base64url')}`;
    };
    const claimsText = JSON.stringify(claims());
    const clerkMember = await signClerkToken(clerk, { userId: 'user_x', orgId: 'org_gamma' });
    const clerkHeader = Buffer.from(clerkMember.split('.')[0] as string, 'base64url').toString('utf8');
    const serviceClaims = JSON.stringify({
      iss: 'billing',
      sub: 'billing',
      aud: 'alpha.localhost',
      iat: now(),
      exp: now() + 60,
    });
    await expectRefused('alpha', {
      'alg twice, RS256 last': resigned(
        idpToken(),
        '{"alg":"none","kid":"idp-rsa","alg":"RS256"}',
        undefined,
        rs256(idp.privateKey),
      ),
      'kid twice': resigned(
        idpToken(),
        '{"alg":"RS256","kid":"idp-ec","kid":"idp-rsa"}',
        undefined,
        rs256(idp.privateKey),
      ),
      'sub twice': resigned(
        idpToken(),
        '{"alg":"RS256","kid":"idp-rsa"}',
        claimsText.replace('"sub":"user-1"', '"sub":"admin","sub":"user-1"'),
        rs256(idp.privateKey),
      ),
      'aud twice, escaped': resigned(
        idpToken(),
        '{"alg":"RS256","kid":"idp-rsa"}',
        claimsText.replace('"aud":"app-alpha"', '"aud":"app-beta","\\u0061ud":"app-alpha"'),
        rs256(idp.privateKey),
      ),
    });
    await expectRefused('gamma', {
      'Clerk, alg twice': resigned(
        clerkMember,
        clerkHeader.replace('{', '{"alg":"HS256",'),
        undefined,
        rs256(clerk.privateKey),
      ),
    });
    const before = origin.seen.length;
    const serviceToken = resigned(
      idpToken(),
      '{"alg":"RS256","kid":"svc-0","kid":"svc-1"}',
      serviceClaims,
      rs256(service.privateKey),
    );
    const response = await send(gateway, 'alpha.localhost', '/internal/x', {
      headers: { authorization: `Bearer ${serviceToken}` },
    });
    expect(response.status, response.text).toBe(401);
    expect(response.json()).toMatchObject({ error: { code: 'invalid_token' } });
    expect(origin.seen.length).toBe(before);
    // The same tokens with each name once are accepted.
    const once = resigned(idpToken(), '{"alg":"RS256","kid":"idp-rsa"}', claimsText, rs256(idp.privateKey));
    expect((await call('alpha', once)).status).toBe(200);
  });
});
