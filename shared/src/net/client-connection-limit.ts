import type { Server, Socket } from 'node:net';
import { AddressRanges } from './address-ranges.js';
import { canonicalAddress, clientCountingKey } from './ip-address.js';

export interface ClientConnectionLimit {
  /** GATEWAY_MAX_CONNECTIONS_PER_CLIENT, CONTROL_PLANE_MAX_CONNECTIONS_PER_CLIENT (0: no limit). */
  readonly limit: number;
  /** GATEWAY_TRUSTED_PROXIES: load balancers carry many clients' connections, so they are not limited. */
  readonly trustedProxies: readonly string[];
  /** A connection was closed on arrival because its address held the limit. */
  readonly onDrop?: () => void;
}

/**
 * The open connections one client address may hold on every traffic listener of a replica together (an
 * IPv6 client by its /64, as every per-client count), as nginx's `limit_conn` per address: without it one
 * client could hold all GATEWAY_MAX_CONNECTIONS (idle keep-alives, WebSockets, slow uploads) and every
 * other tenant's clients were refused. A connection over the limit is closed on arrival, before any TLS
 * handshake or request is read.
 */
export function limitConnectionsPerClient(servers: readonly Server[], options: ClientConnectionLimit): void {
  const { limit } = options;
  if (limit <= 0) return;
  const trusted =
    options.trustedProxies.length === 0 ? undefined : AddressRanges.parse(options.trustedProxies);
  const open = new Map<string, number>();
  const admit = (socket: Socket) => {
    const peer = socket.remoteAddress;
    if (peer === undefined || trusted?.has(peer)) return;
    const client = clientCountingKey(canonicalAddress(peer)?.address ?? peer);
    const held = open.get(client) ?? 0;
    if (held >= limit) {
      options.onDrop?.();
      socket.destroy();
      return;
    }
    open.set(client, held + 1);
    socket.once('close', () => {
      const left = (open.get(client) ?? 1) - 1;
      if (left > 0) open.set(client, left);
      else open.delete(client);
    });
  };
  for (const server of servers) server.on('connection', admit);
}
