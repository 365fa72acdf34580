import type { Duplex } from 'node:stream';
import type { buildConnector } from 'undici';
import { preparingConnections } from './prepared-connections.js';

/**
 * Origin connections closed once an answer's trailer section says `Connection: close`. The origin
 * closes its side after such an answer (RFC 9110 §7.6.1), but undici decides whether a connection is
 * kept from the answer's head only: it put the connection back in the pool and the next request sent
 * down it was answered 502.
 *
 * undici reads an answer where it parses it: each `socket.read()` is followed at once, in the same
 * call, by the parsing that ends an answer and hands its trailers to the proxy's handler. So the socket
 * last read is the one whose answer ended; noting it costs an assignment per read, where undici's
 * diagnostics channels would cost two messages and a map entry per request.
 */
export function closableOnClosingTrailers(connector: buildConnector.connector): buildConnector.connector {
  return preparingConnections(connector, (socket) => {
    const read = socket.read;
    socket.read = function noteRead(this: Duplex, size?: number) {
      socketBeingRead = this;
      return read.call(this, size);
    };
  });
}

let socketBeingRead: Duplex | undefined;

/**
 * Called with an answer's trailers as it ends (from the proxy's handler, while undici parses it):
 * closes the connection it came on when they say `Connection: close`.
 */
export function closeConnectionIfTrailersSayClose(
  trailers: Readonly<Record<string, unknown>> | undefined,
): void {
  if (trailers === undefined || socketBeingRead === undefined) return;
  const connection = trailers['connection'];
  if (connection === undefined) return;
  const options = (Array.isArray(connection) ? connection.join(',') : String(connection))
    .toLowerCase()
    .split(',');
  if (options.some((option) => option.trim() === 'close')) socketBeingRead.destroy();
}
