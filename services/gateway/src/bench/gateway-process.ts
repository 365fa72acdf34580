import { randomUUID } from 'node:crypto';
import { hashApiKey } from '@vantageedge/shared/domain/api-key-hash';
import {
  ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK,
  OriginAddressPolicy,
} from '@vantageedge/shared/net/origin-address-policy';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { platformBaseDomains } from '@vantageedge/shared/settings/common-settings';
import { Registry } from 'prom-client';
import { GatewayConfigStore } from '../config/gateway-config-store.js';
import { parseGatewaySettings } from '../settings.js';
import { startGateway } from '../start-gateway.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { createUpstreamSet } from '../upstream/index.js';

/**
 * A gateway process for quick-compare: one tenant ("bench") with a public route and an API-key route
 * to BENCH_ORIGIN_URL. Prints `{"port": N}` on stdout when listening.
 */
const originUrl = process.env['BENCH_ORIGIN_URL'];
if (!originUrl) throw new Error('BENCH_ORIGIN_URL is required');
const pepper = 'bench-pepper-0123456789abcdef0123456789abcdef';
const config = parseGatewaySettings({
  GATEWAY_PORT: '0',
  GATEWAY_ADMIN_PORT: '0',
  GATEWAY_HOST: '127.0.0.1',
  API_KEY_PEPPER: pepper,
  GATEWAY_ACCESS_LOG_SAMPLE_RATE: process.env['BENCH_ACCESS_LOG_SAMPLE_RATE'] ?? '0',
  // Benchmark connections stay open for the whole run (as with the proxies it is compared with).
  GATEWAY_MAX_REQUESTS_PER_CONNECTION: '0',
  // The benchmark's origin runs on 127.0.0.1.
  ORIGIN_BLOCKED_CIDRS: ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK.join(','),
});
const addressPolicy = new OriginAddressPolicy(config.ORIGIN_BLOCKED_CIDRS);
const registry = new Registry();
const store = new GatewayConfigStore({
  baseDomains: platformBaseDomains(config),
  createUpstreamSet: (origin, tenantId) => createUpstreamSet(origin, { tenantId, registry, addressPolicy }),
});
const originId = randomUUID();
store.apply(
  buildSnapshot({
    subdomain: 'bench',
    origins: [{ id: originId, targets: [originUrl] }],
    routes: [
      { origin_id: originId, path_pattern: '/public/*' },
      { origin_id: originId, path_pattern: '/keyed/*', auth_mode: 'apikey_required' },
    ],
    apiKeys: [{ key_hash: hashApiKey(pepper, 've_live_bench_key_000000000000000000000') }],
  }),
);
const gateway = await startGateway({
  config,
  store,
  registry,
  logger: createLogger({ service: 'gateway-bench', level: 'warn' }),
  addressPolicy,
});
process.stdout.write(`${JSON.stringify({ port: gateway.trafficPort })}\n`);
process.once('SIGTERM', () => {
  void gateway.close().then(() => process.exit(0));
});
