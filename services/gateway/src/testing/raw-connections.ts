import { randomUUID } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { buildSnapshot } from './snapshots.js';

/**
 * Raw client connections to a gateway's listeners, for the tests of its connection limits and timeouts:
 * what a client sent and received, byte for byte, and when the gateway closed the connection.
 */
export interface RawClient {
  socket: net.Socket;
  /** False when the connection was closed before it was established (TLS: before the handshake). */
  secured: boolean;
  received: () => string;
  closed: Promise<void>;
}

/**
 * A plain TCP connection, or TLS with ALPN http/1.1 and `servername`. Resolves once it is established
 * (the TLS handshake done), or once it is closed without that (a connection the gateway dropped).
 */
export function connectRaw(
  kind: 'tls' | 'plain',
  port: number,
  servername = 'localhost',
): Promise<RawClient> {
  return new Promise((resolve) => {
    const socket =
      kind === 'tls'
        ? tls.connect({
            host: '127.0.0.1',
            port,
            servername,
            rejectUnauthorized: false,
            ALPNProtocols: ['http/1.1'],
          })
        : net.connect(port, '127.0.0.1');
    let received = '';
    const closed = new Promise<void>((resolveClosed) => socket.once('close', () => resolveClosed()));
    const client: RawClient = { socket, secured: false, received: () => received, closed };
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      received += chunk;
    });
    socket.on('error', () => {});
    socket.once(kind === 'tls' ? 'secureConnect' : 'connect', () => {
      client.secured = true;
      resolve(client);
    });
    void closed.then(() => resolve(client));
  });
}

export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
    }),
  ]);
}

export const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One tenant `<subdomain>.localhost` whose one route sends everything to `originUrl`. */
export function catchAllTenant(subdomain: string, originUrl: string) {
  const originId = randomUUID();
  return buildSnapshot({
    subdomain,
    origins: [{ id: originId, targets: [originUrl] }],
    routes: [{ origin_id: originId, path_pattern: '/*' }],
  });
}
