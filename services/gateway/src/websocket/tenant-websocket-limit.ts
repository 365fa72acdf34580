import { ClientSlots } from '@vantageedge/shared/net/client-slots';

/** Why an upgrade got no slot: its tenant holds its limit, or its client holds its share of it. */
export type WebSocketLimitRefusal = 'tenant_limit' | 'client_share';

export interface TenantWebSocketLimitOptions {
  /** GATEWAY_MAX_WEBSOCKETS_PER_TENANT: WebSockets per tenant; 0 = no limit. */
  readonly limit: number;
  /** GATEWAY_WEBSOCKET_CLIENT_SHARE: the part of its tenant's limit one client may hold (0: no share kept). */
  readonly clientShare?: number | undefined;
  /** A trusted proxy's own address is no client (its clients are, by what it forwarded). */
  readonly trustedProxies?: readonly string[] | undefined;
  /** GATEWAY_CLIENT_IPV6_PREFIX: the network an IPv6 client is counted by. */
  readonly ipv6Prefix?: number | undefined;
}

/**
 * The WebSockets each tenant holds open on this replica (GATEWAY_MAX_WEBSOCKETS_PER_TENANT), counted
 * from the moment an upgrade is admitted toward its origin until its client connection closes, so an
 * upgrade waiting for the origin's answer holds its slot as an open WebSocket does. Without it one
 * tenant's clients, each under GATEWAY_MAX_CONNECTIONS_PER_CLIENT, could hold every
 * GATEWAY_MAX_CONNECTIONS slot with long-lived WebSockets and every other tenant was refused. Within a
 * tenant, one client (its address as resolved through trusted proxies, an IPv6 one by its network) holds
 * at most GATEWAY_WEBSOCKET_CLIENT_SHARE of them: behind a load balancer no per-connection bound applies
 * to it, and one client's idle WebSockets took every slot of its tenant.
 */
export class TenantWebSocketLimit {
  readonly limit: number;
  readonly #open = new Map<string, number>();
  readonly #clients: ClientSlots | undefined;

  constructor(options: TenantWebSocketLimitOptions) {
    this.limit = options.limit;
    const share = options.clientShare ?? 0;
    this.#clients =
      this.limit > 0 && share > 0
        ? new ClientSlots({
            limit: Math.max(1, Math.floor(this.limit * share)),
            trustedProxies: options.trustedProxies ?? [],
            ipv6Prefix: options.ipv6Prefix,
          })
        : undefined;
  }

  /** The most one client may hold of its tenant's WebSockets (none: no share kept). */
  get perClient(): number | undefined {
    return this.#clients?.limit;
  }

  /**
   * A slot for one of the tenant's WebSockets from `clientIp`, to release once; or why there is none.
   */
  admit(tenantId: string, clientIp: string | undefined): (() => void) | WebSocketLimitRefusal {
    const held = this.#open.get(tenantId) ?? 0;
    if (this.limit > 0 && held >= this.limit) return 'tenant_limit';
    const client = this.#clients?.clientOf(clientIp);
    const clientKey = client === undefined ? undefined : `${tenantId} ${client}`;
    if (clientKey !== undefined && !this.#clients!.take(clientKey)) return 'client_share';
    this.#open.set(tenantId, held + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (clientKey !== undefined) this.#clients!.release(clientKey);
      const left = (this.#open.get(tenantId) ?? 1) - 1;
      if (left > 0) this.#open.set(tenantId, left);
      else this.#open.delete(tenantId);
    };
  }
}
