import { type IncomingMessage, Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** While closing, idle keep-alive connections are closed this often (a response that ends makes one). */
const IDLE_SWEEP_MS = 100;

/** A response of a server that is going away tells its client to reconnect (elsewhere). */
function closeConnectionAfterResponse(_req: IncomingMessage, res: ServerResponse): void {
  res.shouldKeepAlive = false;
}

/** node's list of a server's HTTP/1.1 connections (an HTTP/2 server taking HTTP/1.1 has one too). */
interface ConnectionsList {
  /** Those with no request begun (not a byte of a head since the last request was read whole). */
  idle(): Array<{ socket: Socket & { _httpMessage?: ServerResponse | null } }>;
}

function connectionsList(server: object): ConnectionsList | undefined {
  const key = Object.getOwnPropertySymbols(server).find(
    (symbol) => symbol.description === 'http.server.connections',
  );
  return key === undefined ? undefined : (server as Record<symbol, ConnectionsList | undefined>)[key];
}

/**
 * Destroys the HTTP/1.1 connections that are idle: no request begun, and no response still going out.
 * node's own closeIdleConnections counts a response done once it is ended, not once it is written, so
 * it destroys a large response (a download, a cache HIT) still in the buffers of a client that reads
 * slowly, leaving it part of the body: such a connection is left until its response is written (node
 * then lets go of it and it is idle at a later sweep), or until the stop's deadline. Looked up at each
 * sweep, never per request.
 */
export function closeIdleConnections(server: object): void {
  const connections = connectionsList(server);
  // Not listening yet (no connections), or a node without the list: node's own judgement.
  if (connections === undefined) {
    Server.prototype.closeIdleConnections.call(server as Server);
    return;
  }
  for (const { socket } of connections.idle()) {
    if (socket._httpMessage) continue;
    socket.destroy();
  }
}

/**
 * From now on node's own sweeps of `server` judge idle connections as closeIdleConnections above:
 * `close()` runs one (an HTTP/1.1 server's, and an HTTP/2 server's taking HTTP/1.1). Called at the stop.
 */
export function spareResponsesBeingWritten(server: object): void {
  Object.defineProperty(server, 'closeIdleConnections', {
    configurable: true,
    writable: true,
    value: () => closeIdleConnections(server),
  });
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
 * responses close their connections), idle keep-alive connections are closed as soon as they are idle
 * (a response ended but not yet written out is not idle),
 * and after `timeoutMs` the connections still busy are closed too. Resolves with how many connections
 * had to be cut at the deadline.
 */
export function closeGracefully(server: Server, timeoutMs: number): Promise<number> {
  closeConnectionsAfterResponses(server);
  spareResponsesBeingWritten(server);
  return new Promise((resolve) => {
    if (!server.listening) return resolve(0);
    let cut = 0;
    const sweep = setInterval(() => closeIdleConnections(server), IDLE_SWEEP_MS);
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
    closeIdleConnections(server);
  });
}
