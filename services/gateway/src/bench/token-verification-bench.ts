import { createPublicKey } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { OriginAddressPolicy } from '@vantageedge/shared/net/origin-address-policy';
import { createClerkTestKeys, signClerkToken } from '@vantageedge/shared/testing/clerk-tokens';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { Authenticator } from '../auth/authenticator.js';
import { RemoteJwksRegistry } from '../auth/jwks.js';
import { GatewayConfigStore } from '../config/gateway-config-store.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * CPU per full token verification, the verified-token cache off (`make bench-gateway-auth`): Clerk
 * session tokens (CLERK_JWT_KEY, and Clerk's JWKS), OIDC and service tokens, of a usual size and of
 * about 10 KB (an identity provider listing a user's roles). CPU is this process's user + system time,
 * signature work on libuv's threads included; the median of BENCH_ROUNDS samples of BENCH_ITERATIONS.
 * Results: bench-results/gateway-token-verification.json.
 */
const ITERATIONS = Number(process.env['BENCH_ITERATIONS'] ?? 400);
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 5);
const TEN_KB_ROLES = { roles: Array.from({ length: 432 }, (_, index) => `role:reader-${index}`) };

const clerkKeys = await createClerkTestKeys();
const clerkJwk = { ...createPublicKey(clerkKeys.publicKeyPem).export({ format: 'jwk' }), kid: clerkKeys.kid };
const oidcPair = await generateKeyPair('RS256');
const oidcJwk = { ...(await exportJWK(oidcPair.publicKey)), kid: 'oidc-1', alg: 'RS256', use: 'sig' };
const servicePair = await generateKeyPair('ES256');
const serviceJwk = { ...(await exportJWK(servicePair.publicKey)), kid: 'billing-1' };

// Clerk's Backend API JWKS (/v1/jwks) and the tenant's identity provider, on one local server.
const jwksServer = createServer((req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ keys: req.url === '/v1/jwks' ? [clerkJwk] : [oidcJwk] }));
});
await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
const jwksBase = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}`;
const remoteJwks = new RemoteJwksRegistry({ addressPolicy: new OriginAddressPolicy([]) });

const store = new GatewayConfigStore({
  baseDomains: ['localhost'],
  createUpstreamSet: () => ({ acquire: () => undefined, close: async () => {} }),
  remoteJwks,
});
const originId = '00000000-0000-4000-8000-0000000000aa';
store.apply(
  buildSnapshot({
    subdomain: 'acme',
    clerkOrgId: 'org_acme',
    origins: [{ id: originId, targets: ['http://127.0.0.1:1'] }],
    routes: [
      { origin_id: originId, path_pattern: '/user/*', auth_mode: 'jwt_required' },
      { origin_id: originId, path_pattern: '/internal/*', auth_mode: 'service' },
    ],
    settings: {
      oidc: { issuer: 'https://idp.bench.test', audience: 'api', jwks_url: `${jwksBase}/oidc` },
      service_accounts: [{ id: 'billing', keys: [serviceJwk], scopes: ['read'] }],
    },
  }),
);
const tenant = store.resolveHost('acme.localhost')!;
const [userRoute, serviceRoute] = [tenant.routes[0]!, tenant.routes[1]!];

const clerkToken = (customClaims: Record<string, unknown>) =>
  signClerkToken(clerkKeys, { userId: 'user_1', orgId: 'org_acme', azp: 'https://app.test', customClaims });
const oidcToken = (claims: Record<string, unknown>) =>
  new SignJWT(claims)
    .setProtectedHeader({ alg: 'RS256', kid: 'oidc-1' })
    .setIssuer('https://idp.bench.test')
    .setAudience('api')
    .setSubject('user-1')
    .setIssuedAt()
    .setExpirationTime('10m')
    .sign(oidcPair.privateKey);
const serviceToken = new SignJWT({ scope: 'read' })
  .setProtectedHeader({ alg: 'ES256', kid: 'billing-1' })
  .setSubject('billing')
  .setAudience('acme.localhost')
  .setIssuedAt()
  .setExpirationTime('4m')
  .sign(servicePair.privateKey);

const pemClerk = { jwtKey: clerkKeys.publicKeyPem, authorizedParties: ['https://app.test'] };
const jwksClerk = { secretKey: 'sk_test_bench', apiUrl: jwksBase, authorizedParties: ['https://app.test'] };
const scenarios = [
  { name: 'clerk token, CLERK_JWT_KEY', token: await clerkToken({}), clerk: pemClerk, route: userRoute },
  {
    name: 'clerk 10 KB token, CLERK_JWT_KEY',
    token: await clerkToken(TEN_KB_ROLES),
    clerk: pemClerk,
    route: userRoute,
  },
  { name: 'clerk token, JWKS', token: await clerkToken({}), clerk: jwksClerk, route: userRoute },
  {
    name: 'clerk 10 KB token, JWKS',
    token: await clerkToken(TEN_KB_ROLES),
    clerk: jwksClerk,
    route: userRoute,
  },
  { name: 'oidc token', token: await oidcToken({ scope: 'read write' }), clerk: pemClerk, route: userRoute },
  { name: 'oidc 10 KB token', token: await oidcToken(TEN_KB_ROLES), clerk: pemClerk, route: userRoute },
  { name: 'service token (ES256)', token: await serviceToken, clerk: pemClerk, route: serviceRoute },
];

async function cpuMicrosPerVerification(scenario: (typeof scenarios)[number]): Promise<number> {
  const authenticator = new Authenticator({
    apiKeyPepper: 'x'.repeat(32),
    clerk: scenario.clerk,
    tokenCacheSize: 0,
    remoteJwks,
  });
  const headers = { authorization: `Bearer ${scenario.token}` };
  for (let i = 0; i < 50; i++) {
    const result = await authenticator.authenticate(tenant, scenario.route, headers);
    if (!result.ok) throw new Error(`${scenario.name}: ${result.code} (${result.message})`);
  }
  const started = process.cpuUsage();
  for (let i = 0; i < ITERATIONS; i++) await authenticator.authenticate(tenant, scenario.route, headers);
  const used = process.cpuUsage(started);
  return (used.user + used.system) / ITERATIONS;
}

const results = [];
for (const scenario of scenarios) {
  const samples: number[] = [];
  for (let round = 0; round < ROUNDS; round++) samples.push(await cpuMicrosPerVerification(scenario));
  const median = samples.sort((a, b) => a - b)[Math.floor(samples.length / 2)]!;
  const summary = {
    name: scenario.name,
    token_bytes: scenario.token.length,
    cpu_us_per_verification: Number(median.toFixed(1)),
  };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  results.push(summary);
}
jwksServer.close();
jwksServer.closeAllConnections();
const repo = new URL('../../../../', import.meta.url).pathname;
mkdirSync(join(repo, 'bench-results'), { recursive: true });
writeFileSync(
  join(repo, 'bench-results/gateway-token-verification.json'),
  `${JSON.stringify({ at: new Date().toISOString(), iterations: ITERATIONS, rounds: ROUNDS, results }, null, 2)}\n`,
);
