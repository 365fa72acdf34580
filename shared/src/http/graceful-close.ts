import type { IncomingMessage, Server, ServerResponse } from 'node:http';

/** While closing, idle keep-alive connections are closed this often (a response that ends makes one). */
const IDLE_SWEEP_MS = 100;

/** A response of a server that is going away tells its client to reconnect (elsewhere). */
function closeConnectionAfterResponse(_req: IncomingMessage, res: ServerResponse): void {
  res.shouldKeepAlive = false;
}

/**
 * From now on every response closes its connection (`Connection: close`), so keep-alive clients and
 * load balancers reconnect elsewhere. Costs nothing per request before it is called.
 */
export function closeConnectionsAfterResponses(server: Server): void {
  if (server.listeners('request').includes(closeConnectionAfterResponse)) return;
  server.prependListener('request', closeConnectionAfterResponse);
}

/**
 * Stops accepting and resolves once every connection is gone: requests in flight finish (their
 * responses close their connections), idle keep-alive connections are closed as soon as they are idle,
 * and after `timeoutMs` the connections still busy are closed too. Resolves with how many connections
 * had to be cut at the deadline.
 */
export function closeGracefully(server: Server, timeoutMs: number): Promise<number> {
  closeConnectionsAfterResponses(server);
  return new Promise((resolve) => {
    if (!server.listening) return resolve(0);
    let cut = 0;
    const sweep = setInterval(() => server.closeIdleConnections(), IDLE_SWEEP_MS);
    const deadline = setTimeout(() => {
      server.getConnections((_error, count) => {
        cut = count;
        server.closeAllConnections();
      });
    }, timeoutMs);
    server.close(() => {
      clearInterval(sweep);
      clearTimeout(deadline);
      resolve(cut);
    });
    server.closeIdleConnections();
  });
}
