import type { Socket } from 'node:net';
import type { buildConnector } from 'undici';

interface TenantSockets {
  /** Sockets connecting or open, over every pool of every upstream set of the tenant. */
  open: number;
  /** Open sockets no request uses, longest idle first, each with what uncounts it. */
  readonly idle: Map<Socket, () => void>;
}

/**
 * The sockets one tenant holds open to its origins on this replica, busy and idle: before a pool opens a
 * new one while the tenant holds `limit` (GATEWAY_MAX_UPSTREAM_REQUESTS_PER_TENANT) or more, its sockets
 * idle longest are closed until it holds fewer. Requests in flight are bounded by the same limit and each
 * holds at most one socket, so the idle ones alone are what let a tenant bursting to one target after
 * another (pools are per target, idle sockets stay KEEP_ALIVE_MS) hold the limit times its targets of the
 * replica's file descriptors. When none is idle the connection is opened anyway: the in-flight limit
 * already bounds busy sockets, and a request must not fail over a socket about to be idle.
 *
 * A socket is idle when undici unrefs it (a client does so when it has no request left, and refs it with
 * the next one): a socket turning idle or busy costs one Map update, and nothing scans the pools. Closing an
 * idle socket is what undici's own keep-alive timeout does; a request handed to that client meanwhile
 * waits for a new connection.
 */
export class TenantUpstreamSockets {
  readonly #tenants = new Map<string, TenantSockets>();

  /** 0: no limit (sockets are not counted). */
  constructor(readonly limit: number) {}

  /** Sockets open to the tenant's origins (connecting ones included). */
  openOf(tenantId: string): number {
    return this.#tenants.get(tenantId)?.open ?? 0;
  }

  /** `connector`, its sockets counted for the tenant. */
  connector(tenantId: string, connector: buildConnector.connector): buildConnector.connector {
    if (this.limit <= 0) return connector;
    return (options, callback) => {
      const tenant = this.#opening(tenantId);
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

  /** Counts a socket about to be opened, first closing idle ones while the tenant holds its limit. */
  #opening(tenantId: string): TenantSockets {
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
    tenant.open++;
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
