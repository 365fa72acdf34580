import type { Server, Socket } from 'node:net';
import { type ClientSlotLimit, ClientSlots } from './client-slots.js';

export interface ClientConnectionLimit extends ClientSlotLimit {
  /** GATEWAY_MAX_CONNECTIONS_PER_CLIENT, CONTROL_PLANE_MAX_CONNECTIONS_PER_CLIENT (0: no limit). */
  readonly limit: number;
  /** GATEWAY_TRUSTED_PROXIES: load balancers carry many clients' connections, so they are not limited. */
  readonly trustedProxies: readonly string[];
  /** A connection was closed on arrival because its address held the limit. */
  readonly onDrop?: () => void;
}

/**
 * The open connections one client address may hold on every traffic listener of a replica together (an
 * IPv6 client by its /64 or `ipv6Prefix`, as every per-client count), as nginx's `limit_conn` per
 * address: without it one client could hold all GATEWAY_MAX_CONNECTIONS (idle keep-alives, WebSockets,
 * slow uploads) and every other tenant's clients were refused. A connection over the limit is closed on
 * arrival, before any TLS handshake or request is read. `slots` is the count to share (the gateway's
 * HTTP/2 requests take slots of it too).
 */
export function limitConnectionsPerClient(
  servers: readonly Server[],
  options: ClientConnectionLimit,
  slots: ClientSlots = new ClientSlots(options),
): void {
  if (slots.limit <= 0) return;
  const admit = (socket: Socket) => {
    const client = slots.clientOf(socket.remoteAddress);
    if (client === undefined) return;
    if (!slots.take(client)) {
      options.onDrop?.();
      socket.destroy();
      return;
    }
    socket.once('close', () => slots.release(client));
  };
  for (const server of servers) server.on('connection', admit);
}
