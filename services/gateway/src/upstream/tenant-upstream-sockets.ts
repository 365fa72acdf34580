import type { Socket } from 'node:net';
import type { buildConnector } from 'undici';

interface TenantSockets {
  /** Sockets connecting or open, over every pool of every upstream set of the tenant. */
  open: number;
  /** Open sockets no request uses, longest idle first, each with what uncounts it. */
  readonly idle: Map<Socket, () => void>;
}

/**
 * A tenant's new origin connection was refused: it holds its ceiling of sockets connecting or open, none
 * idle (the pipeline answers 503 tenant_upstream_limit with Retry-After; the origin was not contacted).
 */
export class TenantUpstreamSocketsFullError extends Error {
  readonly code = 'TENANT_UPSTREAM_SOCKETS_FULL';
}

/**
 * The sockets one tenant holds open to its origins on this replica, busy and idle: before a pool opens a
 * new one while the tenant holds `limit` (GATEWAY_MAX_UPSTREAM_REQUESTS_PER_TENANT) or more, its sockets
 * idle longest are closed until it holds fewer. Requests in flight are bounded by the same limit and each
 * holds at most one socket, so the idle ones alone are what let a tenant bursting to one target after
 * another (pools are per target, idle sockets stay KEEP_ALIVE_MS) hold the limit times its targets of the
 * replica's file descriptors. When none is idle the connection is opened anyway, up to `ceiling` (twice
 * the limit): a request must not fail over a socket about to be idle, but a connect outlives the request
 * that asked for it (undici cannot cancel one; it runs to the connect timeout), so a tenant whose clients
 * abort requests to origins that never complete the handshake would otherwise pile up pending connects at
 * its clients' request rate. Past the ceiling the connect fails at once (TenantUpstreamSocketsFullError).
 *
 * A socket is idle when undici unrefs it (a client does so when it has no request left, and refs it with
 * the next one): a socket turning idle or busy costs one Map update, and nothing scans the pools. Closing an
 * idle socket is what undici's own keep-alive timeout does; a request handed to that client meanwhile
 * waits for a new connection.
 */
export class TenantUpstreamSockets {
  readonly #tenants = new Map<string, TenantSockets>();

  /**
   * Sockets connecting or open a tenant may hold. Busy ones stay within `limit` (requests in flight); the
   * other `limit` leave room for sockets whose request just ended and for connects of requests that left.
   */
  readonly ceiling: number;

  /** 0: no limit (sockets are not counted). */
  constructor(readonly limit: number) {
    this.ceiling = 2 * limit;
  }

  /** Sockets open to the tenant's origins (connecting ones included). */
  openOf(tenantId: string): number {
    return this.#tenants.get(tenantId)?.open ?? 0;
  }

  /** `connector`, its sockets counted for the tenant. */
  connector(tenantId: string, connector: buildConnector.connector): buildConnector.connector {
    if (this.limit <= 0) return connector;
    return (options, callback) => {
      const tenant = this.#opening(tenantId);
      if (tenant === undefined) {
        const error = new TenantUpstreamSocketsFullError(
          `the tenant holds its limit of ${this.ceiling} connections to its origins on this gateway`,
        );
        queueMicrotask(() => callback(error, null));
        return;
      }
      let counted = true;
      const uncount = () => {
        if (!counted) return;
        counted = false;
        if (--tenant.open === 0) this.#tenants.delete(tenantId);
      };
      return connector(options, (error, socket) => {
        if (error !== null) {
          uncount();
          callback(error, null);
          return;
        }
        this.#track(tenant, socket, () => {
          tenant.idle.delete(socket);
          uncount();
        });
        callback(null, socket);
      });
    };
  }

  /**
   * Counts a socket about to be opened, first closing idle ones while the tenant holds its limit; none
   * (nothing counted) when the tenant still holds its ceiling.
   */
  #opening(tenantId: string): TenantSockets | undefined {
    let tenant = this.#tenants.get(tenantId);
    if (tenant === undefined) {
      tenant = { open: 0, idle: new Map() };
      this.#tenants.set(tenantId, tenant);
    }
    for (const [socket, uncount] of tenant.idle) {
      if (tenant.open < this.limit) break;
      uncount();
      socket.destroy();
    }
    if (tenant.open >= this.ceiling) return undefined;
    tenant.open++;
    // Closing its last idle socket (a limit of 1) forgot the tenant: the socket opening counts in the entry.
    this.#tenants.set(tenantId, tenant);
    return tenant;
  }

  #track(tenant: TenantSockets, socket: Socket, uncount: () => void): void {
    const { ref, unref } = socket;
    socket.unref = function (this: Socket) {
      if (!this.destroyed) tenant.idle.set(this, uncount);
      return unref.call(this);
    };
    socket.ref = function (this: Socket) {
      tenant.idle.delete(this);
      return ref.call(this);
    };
    socket.once('close', uncount);
  }
}
