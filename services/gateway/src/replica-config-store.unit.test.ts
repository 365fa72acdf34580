import { createLogger } from '@vantageedge/shared/observability/logger';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createReplicaConfigStore } from './replica-config-store.js';
import { parseGatewaySettings } from './settings.js';

/** A replica whose listeners are configured but not bound yet (tenants' health probes may already run). */
function unboundReplica(env: Record<string, string>) {
  const config = parseGatewaySettings({
    API_KEY_PEPPER: 'p'.repeat(32),
    // As make dev and the tests run: origins on loopback are allowed, so only the own-listener rule refuses.
    ORIGIN_BLOCKED_CIDRS: '10.0.0.0/8',
    GATEWAY_HOST: '127.0.0.1',
    GATEWAY_PORT: '18000',
    GATEWAY_ADMIN_PORT: '18001',
    ...env,
  });
  const logger = createLogger({ service: 'test', level: 'error' });
  return createReplicaConfigStore({ config, registry: new Registry(), logger });
}

describe("a replica's origin address policy before its listeners are bound", () => {
  it('refuses the configured traffic, admin and TLS ports on the addresses they are configured on', () => {
    const { addressPolicy } = unboundReplica({
      GATEWAY_ADMIN_HOST: '127.0.0.2',
      GATEWAY_TLS_PORT: '18443',
      GATEWAY_TLS_CERT_FILE: '/nonexistent/cert.pem',
      GATEWAY_TLS_KEY_FILE: '/nonexistent/key.pem',
    });
    expect(addressPolicy.refusal('127.0.0.1', 18000)).toMatch(/own listeners/);
    expect(addressPolicy.refusal('127.0.0.2', 18001)).toMatch(/own listeners/);
    expect(addressPolicy.refusal('127.0.0.1', 18443)).toMatch(/own listeners/);
  });

  it('leaves other ports of those addresses to the blocked ranges', () => {
    const { addressPolicy } = unboundReplica({ GATEWAY_ADMIN_HOST: '127.0.0.2' });
    expect(addressPolicy.refusal('127.0.0.1', 18002)).toBeUndefined();
    expect(addressPolicy.refusal('127.0.0.2', 18000)).toBeUndefined();
  });
});
