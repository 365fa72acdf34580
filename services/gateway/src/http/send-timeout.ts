import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { arrivedOverHttp2 } from './request-version.js';

/** A listener that emits node's `request` event for its HTTP/1.1 requests (plain or TLS). */
interface RequestEvents {
  on(event: 'request', listener: (req: IncomingMessage) => void): unknown;
  on(event: 'close', listener: () => void): unknown;
}

/**
 * GATEWAY_SEND_TIMEOUT_MS: an HTTP/1.1 connection whose client took none of the bytes waiting for it for
 * a whole timeout is closed, as nginx's `send_timeout`. No other timer runs while a response is in
 * flight (the keep-alive timeout starts after it, and a proxied body's idle timeout does not cover a
 * body the gateway wrote whole, a cache HIT), so a client that never read held its connection and the
 * bytes queued for it for ever. One check per listener and timeout over the connections with
 * requests, not a timer per response: a stalled client is cut within one to two timeouts. HTTP/2
 * streams are cancelled by the session's own check (GATEWAY_HTTP2_IDLE_TIMEOUT_SECONDS).
 */
export function limitSendTime(servers: readonly RequestEvents[], timeoutMs: number): void {
  if (timeoutMs <= 0) return;
  /** Each connection's bytes left to send at the last check (undefined: none were waiting then). */
  const connections = new Map<Socket, string | undefined>();
  const check = setInterval(() => {
    for (const [socket, leftAtLastCheck] of connections) {
      const left = bytesLeft(socket);
      if (left !== undefined && left === leftAtLastCheck) socket.destroy();
      else connections.set(socket, left);
    }
  }, timeoutMs);
  check.unref();
  for (const server of servers) {
    server.on('request', (req) => {
      if (arrivedOverHttp2(req)) return;
      const { socket } = req;
      if (connections.has(socket)) return;
      connections.set(socket, undefined);
      socket.once('close', () => connections.delete(socket));
    });
    server.on('close', () => clearInterval(check));
  }
}

/**
 * What is left to send on the connection, as node's own socket timeout tells progress: the bytes
 * queued in the stream, and those of the write under way the kernel has not taken yet (one write of a
 * whole stored body stays under way until its last byte is taken). Undefined when nothing waits.
 */
function bytesLeft(socket: Socket): string | undefined {
  if (socket.writableLength === 0) return undefined;
  const handle = (socket as Socket & { _handle?: { writeQueueSize?: number } | null })._handle;
  return `${socket.writableLength}/${handle?.writeQueueSize ?? 0}`;
}
