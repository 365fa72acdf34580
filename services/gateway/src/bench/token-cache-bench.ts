import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createClerkTestKeys, signClerkToken } from '@vantageedge/shared/testing/clerk-tokens';
import { Authenticator } from '../auth/authenticator.js';
import { GatewayConfigStore } from '../config/gateway-config-store.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * What the verified-token cache saves (`make bench-gateway-auth`): authenticating a Clerk RS256 session
 * token with the cache off (full verification every time) vs on (one verification, then lookups).
 */
const ITERATIONS = Number(process.env['BENCH_ITERATIONS'] ?? 3000);
const keys = await createClerkTestKeys();
const store = new GatewayConfigStore({
  baseDomains: ['localhost'],
  createUpstreamSet: () => ({ acquire: () => undefined, close: async () => {} }),
});
const originId = '00000000-0000-4000-8000-0000000000aa';
store.apply(
  buildSnapshot({
    subdomain: 'acme',
    clerkOrgId: 'org_acme',
    origins: [{ id: originId, targets: ['http://127.0.0.1:1'] }],
    routes: [{ origin_id: originId, path_pattern: '/*', auth_mode: 'jwt_required' }],
  }),
);
const tenant = store.resolveHost('acme.localhost')!;
const route = tenant.routes[0]!;
const token = await signClerkToken(keys, { userId: 'user_1', orgId: 'org_acme', azp: 'https://app.test' });
const headers = { authorization: `Bearer ${token}` };

async function measure(name: string, cacheSize: number) {
  const authenticator = new Authenticator({
    apiKeyPepper: 'x'.repeat(32),
    clerk: { jwtKey: keys.publicKeyPem, authorizedParties: ['https://app.test'] },
    tokenCacheSize: cacheSize,
  });
  for (let i = 0; i < 200; i++) await authenticator.authenticate(tenant, route, headers); // warm-up
  const started = process.hrtime.bigint();
  for (let i = 0; i < ITERATIONS; i++) {
    const result = await authenticator.authenticate(tenant, route, headers);
    if (!result.ok) throw new Error(`authentication failed: ${result.code}`);
  }
  const nsPerOp = Number(process.hrtime.bigint() - started) / ITERATIONS;
  const summary = { name, ns_per_op: Math.round(nsPerOp), ops_per_second: Math.round(1e9 / nsPerOp) };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  return summary;
}

const results = [
  await measure('clerk token, cache off (RS256 verify)', 0),
  await measure('clerk token, cache on', 10_000),
];
const repo = new URL('../../../../', import.meta.url).pathname;
mkdirSync(join(repo, 'bench-results'), { recursive: true });
writeFileSync(
  join(repo, 'bench-results/gateway-token-cache.json'),
  `${JSON.stringify({ at: new Date().toISOString(), iterations: ITERATIONS, results }, null, 2)}\n`,
);
