import type { Socket } from 'node:net';

/**
 * How many listeners of one event a client connection may carry before node warns of a leak. The gateway's
 * modules each watch a connection's `close` (metrics, per-client and per-tenant budgets, the listeners'
 * trackers, the response in flight, a WebSocket it carries: a dozen on an upgrade pipelined behind a
 * request), above node's default of 10; a warning per connection is a log line any client could have the
 * replica write. A real leak (a listener per request on a kept-alive connection) still passes this bound.
 */
const LISTENERS_PER_EVENT = 32;

/** Called once for each client connection a listener accepts. */
export function watchedByTheGateway(socket: Socket): void {
  socket.setMaxListeners(LISTENERS_PER_EVENT);
}
