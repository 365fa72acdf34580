import { constants, createHmac, createSign, KeyObject, randomUUID, sign } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type ClerkTestKeys,
  createClerkTestKeys,
  OFFLINE_CLERK_ISSUER,
  signClerkToken,
} from '@vantageedge/shared/testing/clerk-tokens';
import { rs256Signer } from '@vantageedge/shared/testing/hostile-jws';
import { type CryptoKey, exportJWK, generateKeyPair, importSPKI, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  send,
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';

type Signature = (input: string) => Buffer | string;

const encode = (part: Buffer | string) => Buffer.from(part).toString('base64url');

/** A compact JWS over exactly these header and payload bytes; the signature is the caller's. */
function compact(header: Buffer | string, payload: Buffer | string, signature: Signature): string {
  const input = `${encode(header)}.${encode(payload)}`;
  const signed = signature(input);
  return `${input}.${typeof signed === 'string' ? signed : signed.toString('base64url')}`;
}

const hs256 = (secret: string) => (input: string) => createHmac('sha256', secret).update(input).digest();
const withHash = (key: CryptoKey, hash: string) => (input: string) =>
  createSign(hash).update(input).sign(KeyObject.from(key));
const es256 = (key: CryptoKey) => (input: string) =>
  createSign('sha256')
    .update(input)
    .sign({ key: KeyObject.from(key), dsaEncoding: 'ieee-p1363' });
const ed25519 = (key: CryptoKey) => (input: string) => sign(null, Buffer.from(input), KeyObject.from(key));
const unsigned = () => '';

/**
 * Bearer tokens a client shapes to pass for a Clerk session token of a tenant's member, against both
 * ways the gateway verifies them: the PEM key (CLERK_JWT_KEY) and Clerk's JWKS (CLERK_SECRET_KEY), whose
 * keys are JWKs a token's header selects. Each is refused with 401 and never reaches the origin; the
 * member's own token is served throughout.
 */
describe.each([
  ['networkless (CLERK_JWT_KEY)', false],
  ["through Clerk's JWKS (CLERK_SECRET_KEY)", true],
])('Clerk session tokens forged or bent, verified %s', (_mode, throughJwks) => {
  let origin: TestOrigin;
  let gateway: TestGateway;
  let clerk: ClerkTestKeys;
  let clerkJwk: JWK;
  let clerkApi: Server | undefined;
  let attacker: Awaited<ReturnType<typeof generateKeyPair>>;
  let attackerEc: Awaited<ReturnType<typeof generateKeyPair>>;
  let attackerEd: Awaited<ReturnType<typeof generateKeyPair>>;
  /** A member's token as Clerk mints it: its header and claims, which the cases below bend. */
  let memberToken: string;
  let memberHeader: Record<string, unknown>;
  let memberClaims: Record<string, unknown>;

  const call = (token: string) =>
    send(gateway, 'forge.localhost', '/api/x', { headers: { authorization: `Bearer ${token}` } });

  /** The member's token with these header parameters and claims changed (undefined: left out). */
  const bent = (
    header: Record<string, unknown>,
    claims: Record<string, unknown>,
    signature: Signature = rs256Signer(clerk.privateKey),
  ) =>
    compact(
      JSON.stringify({ ...memberHeader, ...header }),
      JSON.stringify({ ...memberClaims, ...claims }),
      signature,
    );

  async function expectRefused(tokens: Record<string, string>): Promise<void> {
    const before = origin.seen.length;
    const answers: Record<string, unknown> = {};
    for (const [name, token] of Object.entries(tokens)) {
      const response = await call(token);
      answers[name] = [response.status, (response.json()['error'] as { code?: unknown } | undefined)?.code];
    }
    const expected = Object.fromEntries(
      Object.keys(tokens).map((name) => [
        name,
        [401, expect.stringMatching(/^(invalid_token|token_expired)$/)],
      ]),
    );
    expect(answers).toEqual(expected);
    expect(origin.seen.length).toBe(before);
  }

  beforeAll(async () => {
    origin = await startTestOrigin('origin');
    clerk = await createClerkTestKeys();
    attacker = await generateKeyPair('RS256', { extractable: true });
    attackerEc = await generateKeyPair('ES256', { extractable: true });
    attackerEd = await generateKeyPair('Ed25519', { extractable: true });
    clerkJwk = {
      ...(await exportJWK(await importSPKI(clerk.publicKeyPem, 'RS256', { extractable: true }))),
      kid: clerk.kid,
      alg: 'RS256',
      use: 'sig',
    };
    const settings: Record<string, string> = {
      CLERK_ISSUER: OFFLINE_CLERK_ISSUER,
      GATEWAY_AUTH_FAILURES_PER_MINUTE: '0',
    };
    if (throughJwks) {
      clerkApi = createServer((_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [clerkJwk] }));
      });
      await new Promise<void>((resolve) => clerkApi!.listen(0, '127.0.0.1', resolve));
      const url = `http://127.0.0.1:${(clerkApi.address() as AddressInfo).port}`;
      gateway = await startTestGateway({
        ...settings,
        CLERK_SECRET_KEY: 'sk_test_forgeries',
        CLERK_API_URL: url,
      });
    } else {
      gateway = await startTestGateway({ ...settings, CLERK_JWT_KEY: clerk.publicKeyPem });
    }
    const originId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        tenantId: randomUUID(),
        subdomain: 'forge',
        clerkOrgId: 'org_forge',
        origins: [{ id: originId, targets: [origin.url] }],
        routes: [{ origin_id: originId, path_pattern: '/api/*', auth_mode: 'jwt_required' }],
      }),
    );
    memberToken = await signClerkToken(clerk, { userId: 'user_member', orgId: 'org_forge' });
    const [header, payload] = memberToken.split('.') as [string, string];
    memberHeader = JSON.parse(Buffer.from(header, 'base64url').toString('utf8'));
    memberClaims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  });

  afterAll(async () => {
    await gateway?.close();
    await origin?.close();
    clerkApi?.closeAllConnections();
    await new Promise((resolve) => (clerkApi === undefined ? resolve(undefined) : clerkApi.close(resolve)));
  });

  it("serves the member's own token, and the same claims re-signed with Clerk's key", async () => {
    const response = await call(memberToken);
    expect(response.status, response.text).toBe(200);
    expect(response.json()['headers']).toMatchObject({ 'x-vantageedge-user-id': 'user_member' });
    expect((await call(bent({}, {}))).status).toBe(200);
  });

  it('refuses algorithm confusion: none in any case, HMAC keyed with the public key, another alg or key type', async () => {
    const publicKeyTexts = {
      PEM: clerk.publicKeyPem,
      JWK: JSON.stringify(clerkJwk),
      n: String(clerkJwk.n),
      empty: '',
    };
    await expectRefused({
      ...Object.fromEntries(
        ['none', 'None', 'NONE', 'nOnE', ''].map((alg) => [`alg "${alg}"`, bent({ alg }, {}, unsigned)]),
      ),
      'alg none keeping the signature': bent({ alg: 'none' }, {}, () => memberToken.split('.')[2]!),
      ...Object.fromEntries(
        Object.entries(publicKeyTexts).map(([name, secret]) => [
          `HS256 keyed with the ${name}`,
          bent({ alg: 'HS256' }, {}, hs256(secret)),
        ]),
      ),
      'alg rs256 (lower case)': bent({ alg: 'rs256' }, {}),
      'PS256 by the right key (Clerk signs RS256)': bent({ alg: 'PS256' }, {}, (input) =>
        createSign('sha256')
          .update(input)
          .sign({
            key: KeyObject.from(clerk.privateKey),
            padding: constants.RSA_PKCS1_PSS_PADDING,
            saltLength: 32,
          }),
      ),
      'RS384 where the key is RS256': bent({ alg: 'RS384' }, {}, withHash(clerk.privateKey, 'sha384')),
      'ES256 naming the RSA key': bent({ alg: 'ES256' }, {}, es256(attackerEc.privateKey)),
      EdDSA: bent({ alg: 'EdDSA' }, {}, ed25519(attackerEd.privateKey)),
      Ed25519: bent({ alg: 'Ed25519' }, {}, ed25519(attackerEd.privateKey)),
    });
  });

  it('trusts no key nor key URL the token names, and no unencoded payload', async () => {
    const attackerJwk = { ...(await exportJWK(attacker.publicKey)), kid: clerk.kid };
    const forged = (header: Record<string, unknown>) => bent(header, {}, rs256Signer(attacker.privateKey));
    const unencodedPayload = (header: Record<string, unknown>) => {
      const protectedHeader = encode(JSON.stringify({ ...memberHeader, ...header }));
      const payload = JSON.stringify(memberClaims);
      const signature = rs256Signer(clerk.privateKey)(`${protectedHeader}.${payload}`);
      return `${protectedHeader}.${payload}.${signature.toString('base64url')}`;
    };
    await expectRefused({
      'embedded jwk': forged({ jwk: attackerJwk }),
      'embedded jwk, no kid': forged({ kid: undefined, jwk: attackerJwk }),
      jku: forged({ jku: 'http://127.0.0.1:1/jwks' }),
      x5u: forged({ x5u: 'http://127.0.0.1:1/cert' }),
      x5c: forged({ x5c: ['MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA'] }),
      'a kid Clerk does not list': forged({ kid: 'ins_attacker' }),
      'no kid': forged({ kid: undefined }),
      'b64 false, payload not encoded': unencodedPayload({ b64: false }),
      'b64 false, crit, payload not encoded': unencodedPayload({ b64: false, crit: ['b64'] }),
      'b64 false, crit, payload encoded': bent({ b64: false, crit: ['b64'] }, {}),
    });
  });

  it("refuses a header type other than JWT and a machine token, signed with Clerk's key though they are", async () => {
    await expectRefused({
      ...Object.fromEntries(
        ['at+jwt', 'JWT ', 'jwt', 'application/jwt', '', 1, null].map((typ) => [
          `typ ${JSON.stringify(typ)}`,
          bent({ typ }, {}),
        ]),
      ),
      'machine-to-machine category': bent({ cat: 'cl_B7d4PD333AAA' }, {}),
    });
  });

  it("refuses claims of another type or out of time, signed with Clerk's key though they are", async () => {
    const now = Math.floor(Date.now() / 1000);
    const exp = memberClaims['exp'] as number;
    await expectRefused({
      'exp missing': bent({}, { exp: undefined }),
      ...Object.fromEntries(
        [String(exp), [exp], true, null, { exp }].map((value) => [
          `exp ${JSON.stringify(value)}`,
          bent({}, { exp: value }),
        ]),
      ),
      'exp past the 5 s skew': bent({}, { exp: now - 10 }),
      'nbf as text': bent({}, { nbf: String(now) }),
      'nbf a minute ahead': bent({}, { nbf: now + 60 }),
      'iat as text': bent({}, { iat: String(now) }),
      'iat a minute ahead': bent({}, { iat: now + 60 }),
      'sub missing': bent({}, { sub: undefined }),
      'sub a number': bent({}, { sub: 1 }),
      'sub a list': bent({}, { sub: ['user_member'] }),
      'iss listed in an array': bent({}, { iss: [OFFLINE_CLERK_ISSUER] }),
      'iss of another instance': bent({}, { iss: 'https://other.clerk.accounts.dev' }),
      'iss missing': bent({}, { iss: undefined }),
    });
  });

  it('refuses a header or claims set that is not one strict UTF-8 JSON object, or names a claim twice', async () => {
    const header = JSON.stringify(memberHeader);
    const claims = JSON.stringify(memberClaims);
    const clerkSigned = rs256Signer(clerk.privateKey);
    const invalidUtf8 = (json: string) =>
      Buffer.concat([
        Buffer.from(json.slice(0, -1)),
        Buffer.from(',"x":"\xff"}', 'latin1'), // a byte no UTF-8 text has
      ]);
    await expectRefused({
      'claims with invalid UTF-8': compact(header, invalidUtf8(claims), clerkSigned),
      'header with invalid UTF-8': compact(invalidUtf8(header), claims, clerkSigned),
      'claims in an array': compact(header, `[${claims}]`, clerkSigned),
      'claims in UTF-16': compact(header, Buffer.from(claims, 'utf16le'), clerkSigned),
      'sub named twice, once escaped': compact(
        header,
        claims.replace('{', '{"s\\u0075b":"user_admin",'),
        clerkSigned,
      ),
      'alg named twice, none first': compact(header.replace('{', '{"alg":"none",'), claims, clerkSigned),
    });
  });

  it("serves a verified token's entry to that exact token only: one ending in its signature is checked on its own", async () => {
    expect((await call(memberToken)).status).toBe(200);
    const [header, payload, signature] = memberToken.split('.') as [string, string, string];
    // Another member of the same length, so the tokens differ only before the signature.
    const claims = Buffer.from(payload, 'base64url').toString('utf8').replace('user_member', 'user_admins');
    const sameLength = `${header}.${encode(claims)}.${signature}`;
    expect(sameLength).toHaveLength(memberToken.length);
    expect(sameLength.slice(-64)).toBe(memberToken.slice(-64));
    await expectRefused({ 'claims of another user, the member token’s signature': sameLength });
    expect((await call(memberToken)).status).toBe(200);
  });
});
