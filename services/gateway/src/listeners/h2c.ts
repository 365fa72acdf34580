import type { Server as HttpServer } from 'node:http';
import type { Http2Server } from 'node:http2';
import type { Socket } from 'node:net';

/** What an HTTP/2 client with prior knowledge sends first (RFC 9113 §3.4). */
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

type ConnectionListener = (this: HttpServer, socket: Socket) => void;

/**
 * Cleartext HTTP/2 with prior knowledge on the HTTP/1.1 listener: the first bytes of a connection
 * decide. The HTTP/2 connection preface hands the socket to `h2` (bytes read so far put back);
 * anything else goes to node's HTTP/1.1 connection handling as if nothing had happened. The listener
 * stays the one http.Server (its limits, connection count and close apply to both).
 */
export function acceptH2cOn(
  http: HttpServer,
  h2: Http2Server,
  options: {
    firstBytesTimeoutMs: number;
    onH2c?: (socket: Socket) => void;
    onHttp1?: (socket: Socket) => void;
  },
): void {
  const [nodeListener] = http.listeners('connection') as ConnectionListener[];
  if (nodeListener === undefined) throw new Error('the HTTP server has no connection listener to wrap');
  http.removeListener('connection', nodeListener);
  http.prependListener('connection', (socket: Socket) => {
    let seen: Buffer = Buffer.alloc(0);
    // Until a protocol owns the socket, its errors and silence are ours to handle.
    const drop = () => socket.destroy();
    socket.on('error', drop);
    socket.once('end', drop);
    // One deadline for the bytes that decide, however slowly they trickle in.
    const firstBytesDeadline = setTimeout(drop, options.firstBytesTimeoutMs);
    socket.once('close', () => clearTimeout(firstBytesDeadline));
    const decide = (chunk: Buffer) => {
      seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
      const compared = Math.min(seen.length, PREFACE.length);
      const matches = seen.subarray(0, compared).equals(PREFACE.subarray(0, compared));
      if (matches && seen.length < PREFACE.length) return; // a prefix of the preface: wait for more
      socket.off('data', decide);
      socket.off('error', drop);
      socket.off('end', drop);
      clearTimeout(firstBytesDeadline);
      socket.pause();
      socket.unshift(seen);
      if (matches) {
        options.onH2c?.(socket);
        // The HTTP/1.1 listener keeps sockets half-open after the client's FIN (HTTP/1.1 may answer after
        // it); HTTP/2 has no half-close, so a client's FIN means it is gone: our side ends too, or the session
        // (and a stop waiting for it) would hang on until a timeout.
        socket.allowHalfOpen = false;
        // The session takes over the socket's reads, the bytes already read included.
        h2.emit('connection', socket);
      } else {
        options.onHttp1?.(socket);
        nodeListener.call(http, socket);
        socket.resume();
      }
    };
    socket.on('data', decide);
  });
}
