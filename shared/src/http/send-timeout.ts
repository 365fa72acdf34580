import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Writable } from 'node:stream';
import { arrivedOverHttp2 } from './request-version.js';

/** A listener that emits node's `request` event for its HTTP/1.1 requests (plain or TLS). */
interface RequestEvents {
  on(event: 'request' | 'upgrade', listener: (req: IncomingMessage) => void): unknown;
  on(event: 'close', listener: () => void): unknown;
}

/**
 * GATEWAY_SEND_TIMEOUT_MS: an HTTP/1.1 connection whose client took none of the bytes waiting for it for
 * a whole timeout is closed, as nginx's `send_timeout`. No other timer runs while a response is in
 * flight (the keep-alive timeout starts after it, and a proxied body's idle timeout does not cover a
 * body the gateway wrote whole, a cache HIT), so a client that never read held its connection and the
 * bytes queued for it for ever. One check per listener and timeout over the connections with
 * requests, not a timer per response: a stalled client is cut within one to two timeouts. HTTP/2
 * streams are cancelled by the session's own check (GATEWAY_HTTP2_IDLE_TIMEOUT_SECONDS). A connection
 * upgraded after a kept-alive request leaves this check: an open WebSocket is held to the timeout by
 * its own (stalled-receivers.ts), which closes it with 1001 where this one would cut it (1006).
 */
export function limitSendTime(
  servers: readonly RequestEvents[],
  timeoutMs: number,
  /**
   * The servers switch protocols on an upgrade (they listen for it): a switched connection leaves this
   * check. Only then is an `upgrade` listener added — on a server without one, node answers an upgrade
   * request as any request, and a listener of its own would take it from the handler, unanswered.
   */
  options: { readonly takesUpgrades?: boolean } = {},
): void {
  if (timeoutMs <= 0) return;
  /** Each connection's sending state at the last check (undefined: nothing was waiting then). */
  const connections = new Map<Socket, string | undefined>();
  const check = setInterval(() => {
    for (const [socket, stateAtLastCheck] of connections) {
      const state = sendingState(socket, socket.bytesWritten);
      if (state !== undefined && state === stateAtLastCheck) socket.destroy();
      else connections.set(socket, state);
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
    if (options.takesUpgrades === true) server.on('upgrade', (req) => connections.delete(req.socket));
    server.on('close', () => clearInterval(check));
  }
}

/**
 * Where a connection's sending stands, undefined when nothing waits. As node's own socket timeout
 * tells progress: the bytes queued in the stream, and those of the write under way the kernel has not
 * taken yet (one write of a whole stored body stays under way until its last byte is taken). Over TLS
 * the TLS layer's own queue stays the same while the client reads; the TCP connection under it tells
 * the progress. And `bytesWritten`, the bytes written to it so far: a proxied body streams in chunks of
 * one size, so a connection that keeps sending can show the same queues at two checks. Also for an
 * HTTP/2 stream, whose queue shrinks as its peer's flow-control window lets it go.
 */
export function sendingState(stream: Writable, bytesWritten: number): string | undefined {
  if (stream.writableLength === 0) return undefined;
  const { _handle: handle, _parent: transport } = stream as UnderlyingHandles;
  return `${bytesWritten}/${stream.writableLength}/${handle?.writeQueueSize ?? 0}/${transport?._handle?.writeQueueSize ?? 0}`;
}

/** node's handle of a socket, and for a TLS socket the TCP socket it runs over. */
interface UnderlyingHandles {
  _handle?: { writeQueueSize?: number } | null;
  _parent?: UnderlyingHandles | null;
}
