import type { Socket } from 'node:net';
import type { OriginAddressPolicy } from '@vantageedge/shared/net/origin-address-policy';
import type { Logger } from '@vantageedge/shared/observability/logger';
import { LRUCache } from 'lru-cache';
import type { buildConnector } from 'undici';
import { type Resolve, tenantDnsLookups } from '../upstream/dns-lookups.js';
import { createGuardedConnector } from '../upstream/guarded-connector.js';
import { DEFAULT_ORIGIN_TLS, reportingTlsFailures } from '../upstream/origin-tls.js';
import type { OriginTlsBudget } from '../upstream/origin-tls-budget.js';
import { createStateChangeLog } from '../upstream/state-change-log.js';
import type { UpstreamTarget } from '../upstream/types.js';

/** Guarded connectors kept per tenant, connect timeout and origin TLS settings (the most recently used). */
const MAX_CONNECTORS = 32;

/**
 * Connections to an upgrade's origin target through the guarded connector the upstream pools use: the
 * address is checked after DNS resolution and the replica's own listeners are refused
 * (OriginAddressBlockedError), TLS included for https targets.
 */
export class OriginConnectors {
  readonly #addressPolicy: OriginAddressPolicy;
  readonly #logger: Logger | undefined;
  readonly #tlsBudget: OriginTlsBudget | undefined;
  /**
   * Guarded connectors (the upstream pools' own connector) by tenant, connect timeout, TLS settings and
   * scope of the tenant's lookups (the target's upstream set).
   */
  readonly #connectors = new LRUCache<string, buildConnector.connector>({ max: MAX_CONNECTORS });
  readonly #scopeIds = new WeakMap<Resolve, number>();
  #scopes = 0;

  constructor(addressPolicy: OriginAddressPolicy, logger: Logger | undefined, tlsBudget?: OriginTlsBudget) {
    this.#addressPolicy = addressPolicy;
    this.#logger = logger;
    this.#tlsBudget = tlsBudget;
  }

  connect(
    tenantId: string,
    target: UpstreamTarget,
    connectMs: number,
    callback: (error: Error | null, socket: Socket) => void,
  ): void {
    const tls = target.tls ?? DEFAULT_ORIGIN_TLS;
    // Names are looked up in the tenant's turn, in its upstream set's scope as its pools' are: those not
    // yet started leave the line once the set has closed (its origin changed, its tenant deleted).
    const lookups = target.lookups;
    const key = `${tenantId} ${connectMs} ${tls.key} ${lookups === undefined ? '' : this.#scopeId(lookups.resolve)}`;
    let connector = this.#connectors.get(key);
    if (connector === undefined) {
      const resolve = lookups?.resolve ?? tenantDnsLookups.forTenant(tenantId);
      const log = createStateChangeLog(this.#logger, () => performance.now());
      const budget = this.#tlsBudget;
      connector = reportingTlsFailures(
        createGuardedConnector(
          this.#addressPolicy,
          { timeout: connectMs },
          resolve,
          tls,
          budget === undefined ? undefined : (inner) => budget.connector(tenantId, 'websocket', inner, tls),
        ),
        (reason, error, hostname) =>
          log('warn', 'origin TLS handshake failed', {
            tenant_id: tenantId,
            target: hostname,
            reason,
            // The reason is the code; the message (the certificate's names, bounded) says what did not match.
            error: error.message.slice(0, 300),
            during: 'websocket_upgrade',
          }),
      );
      this.#connectors.set(key, connector);
    }
    const { hostname, host, protocol, port } = target.url;
    const connected = lookups?.connecting();
    try {
      connector(
        {
          // An IPv6 literal without its brackets, as undici's own pools pass it.
          hostname: hostname.startsWith('[') ? hostname.slice(1, -1) : hostname,
          host,
          protocol,
          port: port || (protocol === 'https:' ? '443' : '80'),
        },
        (error, socket) => {
          connected?.();
          callback(error, socket as Socket);
        },
      );
    } catch (error) {
      connected?.();
      throw error;
    }
  }

  #scopeId(resolve: Resolve): number {
    let id = this.#scopeIds.get(resolve);
    if (id === undefined) {
      id = ++this.#scopes;
      this.#scopeIds.set(resolve, id);
    }
    return id;
  }
}
