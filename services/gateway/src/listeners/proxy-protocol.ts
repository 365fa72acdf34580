import type { Server, Socket } from 'node:net';
import { AddressRanges } from '@vantageedge/shared/net/address-ranges';
import { socketPeerAddress } from '@vantageedge/shared/net/client-address';
import type { RecordListenerRefusal } from '../observability/listener-refusals.js';
import { type ProxySource, readProxyHeader } from './proxy-protocol-header.js';

export interface ProxyProtocolOptions {
  /** GATEWAY_TRUSTED_PROXIES: the only peers whose PROXY header is believed (nginx's `set_real_ip_from`). */
  readonly trustedProxies: readonly string[];
  /** GATEWAY_HEADERS_TIMEOUT_MS: the whole header must arrive within it. */
  readonly timeoutMs: number;
  /** A connection closed without being served: untrusted peer, no or a malformed header, too slow. */
  readonly recordRefusal?: RecordListenerRefusal | undefined;
  /**
   * Every connection node accepted, before its header is read (the listeners' `connection` event comes
   * after it): what counts the connections a replica holds must count it from here.
   */
  readonly onAccepted?: ((server: Server, socket: Socket) => void) | undefined;
}

/**
 * GATEWAY_PROXY_PROTOCOL=on: every connection to `servers` must start with a PROXY protocol header (v1 or
 * v2) from a trusted peer, as nginx's `listen … proxy_protocol` requires; the address it names becomes the
 * connection's peer (`remoteAddress`) before any listener of the server sees the connection, so the
 * per-client connection limit, the client-address resolution (X-Forwarded-For walked from it), IP rules,
 * X-Real-IP and the access log all start from the client, not from the balancer. A TLS listener gets
 * the header before the ClientHello. Connections that fail are closed without an answer (what could be
 * written in clear on a TLS port?) and recorded as listener refusals.
 *
 * The header is read before node's `connection` event reaches the server's listeners (node's HTTP, TLS
 * and h2c handling among them); node's own connection count and `maxConnections` still apply on arrival.
 * A server's `close()` also closes its connections still waiting for their header: they carry no request
 * yet (as the idle keep-alive connections node's HTTP `close()` closes), and none of the listeners'
 * shutdown sweeps knows them, so the stop would otherwise wait out the headers timeout.
 */
export function requireProxyProtocol(servers: readonly Server[], options: ProxyProtocolOptions): void {
  const trusted = AddressRanges.parse(options.trustedProxies);
  for (const server of servers) {
    const awaitingHeader = new Set<Socket>();
    const emit = server.emit as (this: Server, event: string | symbol, ...args: unknown[]) => boolean;
    const handOver = (socket: Socket) => {
      emit.call(server, 'connection', socket);
      // The bytes after the header were put back in a paused socket: node's HTTP/1.1 (or h2c) listener
      // reads them as 'data' once it flows; TLS reads the socket's buffer itself and must not be resumed.
      if (socket.listenerCount('data') > 0) socket.resume();
    };
    server.emit = function emitAfterProxyHeader(this: Server, event: string | symbol, ...args: unknown[]) {
      if (event !== 'connection') return emit.call(this, event, ...args);
      options.onAccepted?.(server, args[0] as Socket);
      readHeaderOf(args[0] as Socket, trusted, options, awaitingHeader, handOver);
      return true;
    } as Server['emit'];
    const close = server.close;
    server.close = function closeWithConnectionsAwaitingHeader(
      this: Server,
      ...args: Parameters<Server['close']>
    ) {
      const closing = close.apply(this, args);
      for (const socket of awaitingHeader) socket.destroy();
      return closing;
    } as Server['close'];
  }
}

function readHeaderOf(
  socket: Socket,
  trusted: AddressRanges,
  options: ProxyProtocolOptions,
  awaitingHeader: Set<Socket>,
  handOver: (socket: Socket) => void,
): void {
  const peer = socketPeerAddress(socket);
  const refuse = (status: number, code: string) => {
    options.recordRefusal?.({ status, code, clientIp: peer });
    socket.destroy();
  };
  if (peer === undefined || !trusted.has(peer)) {
    refuse(400, 'proxy_protocol_untrusted');
    return;
  }

  let seen: Buffer = Buffer.alloc(0);
  awaitingHeader.add(socket);
  const stop = () => {
    awaitingHeader.delete(socket);
    clearTimeout(deadline);
    socket.off('data', read);
    socket.off('error', drop);
    socket.off('end', drop);
    socket.off('close', stop);
  };
  // A balancer that gave up, or a connection reset, before the header: nothing to answer.
  const drop = () => {
    stop();
    socket.destroy();
  };
  const deadline = setTimeout(() => {
    stop();
    refuse(408, 'proxy_protocol_timeout');
  }, options.timeoutMs);
  const read = (chunk: Buffer) => {
    seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
    const reading = readProxyHeader(seen);
    if (reading.kind === 'incomplete') return;
    stop();
    if (reading.kind === 'malformed') {
      refuse(400, 'proxy_protocol_malformed');
      return;
    }
    socket.pause();
    if (seen.length > reading.length) socket.unshift(seen.subarray(reading.length));
    if (reading.source !== undefined) declarePeer(socket, reading.source);
    handOver(socket);
  };
  socket.on('data', read);
  socket.on('error', drop);
  socket.once('end', drop);
  socket.once('close', stop);
}

interface PeerNameHandle {
  getpeername?: (out: Record<string, unknown>) => number;
}

/**
 * Makes `source` the socket's peer for every reader: the socket's own `remoteAddress`/`remotePort`/
 * `remoteFamily`, and those of a TLS socket wrapped around it, which asks the TCP handle underneath
 * (node's TLSSocket forwards `getpeername` to its parent handle).
 */
function declarePeer(socket: Socket, source: ProxySource): void {
  const peer = { address: source.address, port: source.port, family: source.family };
  Object.defineProperty(socket, 'remoteAddress', { value: peer.address, configurable: true });
  Object.defineProperty(socket, 'remotePort', { value: peer.port, configurable: true });
  Object.defineProperty(socket, 'remoteFamily', { value: peer.family, configurable: true });
  const handle = (socket as unknown as { _handle?: PeerNameHandle | null })._handle;
  if (handle) {
    handle.getpeername = (out) => {
      Object.assign(out, peer);
      return 0;
    };
  }
}
