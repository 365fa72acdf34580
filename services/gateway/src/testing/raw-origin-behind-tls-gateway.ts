import { randomUUID } from 'node:crypto';
import type { ClientHttp2Session } from 'node:http2';
import net from 'node:net';
import { startTlsTestGateway, type TlsTestGateway } from './http2-websockets.js';
import { catchAllTenant } from './raw-connections.js';

/** A raw TCP origin and a TLS test gateway whose one tenant sends everything to it. */
export interface RawOriginBehindTlsGateway {
  readonly gateway: TlsTestGateway;
  /** The tenant's host (`<name>-<random>.localhost`). */
  readonly host: string;
  /** The origin's connections, in the order they came. */
  readonly originSockets: readonly net.Socket[];
  /** HTTP/2 sessions a test opened: destroyed by `close`. */
  readonly sessions: ClientHttp2Session[];
  close(): Promise<void>;
}

/**
 * `onConnection` answers each of the origin's connections (its bytes as they come: the test writes the
 * 101 and the frames itself). WebSockets never idle out (GATEWAY_WEBSOCKET_IDLE_TIMEOUT_SECONDS=0).
 */
export async function startRawOriginBehindTlsGateway(
  name: string,
  onConnection: (socket: net.Socket) => void,
  originOptions: net.ServerOpts = {},
): Promise<RawOriginBehindTlsGateway> {
  const originSockets: net.Socket[] = [];
  const sessions: ClientHttp2Session[] = [];
  const origin = net.createServer(originOptions, (socket) => {
    originSockets.push(socket);
    onConnection(socket);
  });
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  const subdomain = `${name}-${randomUUID().slice(0, 8)}`;
  let gateway: TlsTestGateway;
  try {
    gateway = await startTlsTestGateway({ GATEWAY_WEBSOCKET_IDLE_TIMEOUT_SECONDS: '0' });
  } catch (error) {
    origin.close();
    throw error;
  }
  const { port } = origin.address() as net.AddressInfo;
  gateway.store.apply(catchAllTenant(subdomain, `http://127.0.0.1:${port}`));
  return {
    gateway,
    host: `${subdomain}.localhost`,
    originSockets,
    sessions,
    async close() {
      for (const session of sessions) session.destroy();
      for (const socket of originSockets) socket.destroy();
      await gateway.close();
      await new Promise((resolve) => origin.close(resolve));
    },
  };
}
