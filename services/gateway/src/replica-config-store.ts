import { OriginAddressPolicy } from '@vantageedge/shared/net/origin-address-policy';
import type { Logger } from '@vantageedge/shared/observability/logger';
import { platformBaseDomains } from '@vantageedge/shared/settings/common-settings';
import { keyRingFromSettings } from '@vantageedge/shared/tls/settings';
import { Counter, type Registry } from 'prom-client';
import type { JwksFetchPolicy, RemoteJwksRegistry } from './auth/jwks.js';
import { GatewayConfigStore } from './config/gateway-config-store.js';
import { trustedProxiesFromSettings } from './proxy/client-address.js';
import { type GatewaySettings, upstreamRequestsPerTenant } from './settings.js';
import { remoteJwksFromConfig } from './start-gateway.js';
import {
  createUpstreamSet,
  stateChangeLineBudget,
  TenantUpstreamSockets,
  targetLabelBudget,
  type UpstreamSetDeps,
} from './upstream/index.js';
import { originClientCertificates } from './upstream/origin-client-certificate.js';
import { OriginTlsBudget } from './upstream/origin-tls-budget.js';
import { ProbeBudget } from './upstream/probe-budget.js';

export interface ReplicaConfigStoreOptions {
  config: GatewaySettings;
  registry: Registry;
  logger: Logger;
  /** Remote key set bounds other than the replica's fixed ones (tests: a refresh age of 0, say). */
  jwksPolicy?: Partial<JwksFetchPolicy> | undefined;
  /** Pool sizes of every upstream set other than the settings' (tests of a saturated target). */
  upstreams?: Pick<UpstreamSetDeps, 'connectionsPerTarget' | 'maxQueuedPerTarget'> | undefined;
}

/** The config store and what its tenants' origins and key sets are reached through, which startGateway shares. */
export interface ReplicaConfigStore {
  store: GatewayConfigStore;
  /** Where the replica connects for tenants; startGateway adds its bound listeners. */
  addressPolicy: OriginAddressPolicy;
  remoteJwks: RemoteJwksRegistry;
  originTlsBudget: OriginTlsBudget;
}

/**
 * A replica's config store (compiled tenants) and the upstream sets it makes for each tenant's origins:
 * every bound the settings put on what tenants reach through the replica (origin addresses, remote key
 * sets, sockets and requests in flight per tenant, origin TLS handshakes, health probes, metric series
 * and state-change lines) is shared by all of them here.
 */
export function createReplicaConfigStore(options: ReplicaConfigStoreOptions): ReplicaConfigStore {
  const { config, registry, logger } = options;
  // The configured ports are refused before the listeners are up (health checks start with the first
  // snapshot); startGateway adds the bound ports.
  const addressPolicy = new OriginAddressPolicy(config.ORIGIN_BLOCKED_CIDRS, [
    { host: config.GATEWAY_HOST, port: config.GATEWAY_PORT },
    { host: config.GATEWAY_ADMIN_HOST, port: config.GATEWAY_ADMIN_PORT },
    ...(config.GATEWAY_TLS_PORT === undefined
      ? []
      : [{ host: config.GATEWAY_HOST, port: config.GATEWAY_TLS_PORT }]),
  ]);
  const remoteJwks = remoteJwksFromConfig(config, registry, logger, addressPolicy, options.jwksPolicy);
  const hostsRefused = new Counter({
    name: 'vantageedge_gateway_host_claims_refused_total',
    help: 'Hosts a snapshot names that this replica does not route to that tenant, by reason',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  const probeBudget = new ProbeBudget({
    perSecond: config.GATEWAY_HEALTH_PROBES_PER_SECOND,
    maxSocketsPerTenant: config.GATEWAY_MAX_PROBE_SOCKETS_PER_TENANT,
    registry,
  });
  const upstreamSockets = new TenantUpstreamSockets(upstreamRequestsPerTenant(config));
  const originTlsBudget = new OriginTlsBudget({
    msPerSecond: config.GATEWAY_ORIGIN_TLS_CHECK_MS_PER_SECOND,
    burstMs: config.GATEWAY_ORIGIN_TLS_CHECK_BURST_MS,
    perTenantAtOnce: config.GATEWAY_ORIGIN_TLS_HANDSHAKES_PER_TENANT,
    registry,
  });
  const targetLabels = targetLabelBudget(config);
  // Targets' health and circuit changes are service-log lines.
  const stateChangeLines = stateChangeLineBudget(logger);
  // An origin's tls.client_certificate_id is presented (with CERTIFICATE_ENCRYPTION_KEY).
  const originClientCertificate = originClientCertificates(keyRingFromSettings(config), logger);
  const store = new GatewayConfigStore({
    baseDomains: platformBaseDomains(config),
    remoteJwks,
    createUpstreamSet: (origin, tenantId, clientCertificate) =>
      createUpstreamSet(origin, {
        tenantId,
        ...originClientCertificate(origin, tenantId, clientCertificate),
        registry,
        logger,
        stateChangeLines,
        probeBudget,
        addressPolicy,
        targetLabels,
        connectionsPerTarget: config.GATEWAY_UPSTREAM_CONNECTIONS_PER_TARGET,
        maxQueuedPerTarget: config.GATEWAY_UPSTREAM_MAX_QUEUED_REQUESTS,
        clientShare: config.GATEWAY_UPSTREAM_CLIENT_SHARE,
        clientIpv6Prefix: config.GATEWAY_CLIENT_IPV6_PREFIX,
        trustedProxies: trustedProxiesFromSettings(config).ranges,
        upstreamSockets,
        originTlsBudget,
        ...options.upstreams,
      }),
    maxUpstreamRequestsPerTenant: upstreamRequestsPerTenant(config),
    onWarning: (warning) =>
      logger.warn('snapshot problem', { tenant_id: warning.tenantId, problem: warning.message }),
    onHostRefused: (refusal) => hostsRefused.inc({ reason: refusal.reason }),
    onCloseError: (error) => logger.warn('closing an upstream set failed', { error: String(error) }),
  });
  return { store, addressPolicy, remoteJwks, originTlsBudget };
}
