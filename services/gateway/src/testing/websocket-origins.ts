import { type IncomingHttpHeaders, type RequestListener, STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { type ServerOptions, WebSocketServer } from 'ws';
import { type HttpOrigin, type OriginCertificate, startHttpOrigin } from './http-origins.js';

export interface WebSocketOrigin extends HttpOrigin {
  wss: WebSocketServer;
  /** The headers of every upgrade request it received, switched or not, in order. */
  upgrades: IncomingHttpHeaders[];
  /** Ends its WebSockets, its hanging upgrades and its plain connections, then stops listening. */
  close(): Promise<void>;
}

export interface WebSocketOriginOptions {
  /** Its first message on every WebSocket and its answer to a plain request (else 'hello' and 'plain'). */
  name?: string;
  /** The first message from the path the upgrade asked for, or `false` for none (else the name). */
  hello?: ((path: string) => string) | false;
  /** How it answers an upgrade it does not switch: that HTTP status, or never ('hang'); undefined switches. */
  refuse?: (path: string) => number | 'hang' | undefined;
  /** Decides (maybe later) whether an upgrade it would switch may switch. */
  verifyClient?: ServerOptions['verifyClient'];
  /** Answers plain (non-upgrade) requests instead of the name. */
  plain?: RequestListener;
  /** Serves https (wss) with this certificate. */
  certificate?: OriginCertificate;
}

/**
 * A `ws` origin on 127.0.0.1 (`wss` with a certificate): says hello on each WebSocket, then echoes every message as it came
 * (text as text, binary as binary). `wss` emits `connection` (WebSocket, upgrade request) for each.
 */
export async function startWebSocketOrigin(options: WebSocketOriginOptions = {}): Promise<WebSocketOrigin> {
  const plainAnswer = options.name ?? 'plain';
  const hello = options.hello ?? (() => options.name ?? 'hello');
  const origin = await startHttpOrigin(
    options.plain ?? ((_req, res) => res.writeHead(200).end(plainAnswer)),
    options.certificate,
  );
  const { server } = origin;
  const wss = new WebSocketServer({ noServer: true, verifyClient: options.verifyClient });
  const upgrades: IncomingHttpHeaders[] = [];
  // Upgraded and hanging upgrade connections are no longer the HTTP server's to close.
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('upgrade', (req, socket: Socket, head) => {
    upgrades.push(req.headers);
    const path = req.url ?? '/';
    const refusal = options.refuse?.(path);
    if (refusal === 'hang') return;
    if (refusal !== undefined) {
      const reason = STATUS_CODES[refusal] ?? 'Refused';
      socket.end(`HTTP/1.1 ${refusal} ${reason}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      // As ws's own server does: a test can tell its WebSockets apart by their upgrade requests.
      wss.emit('connection', ws, req);
      if (hello !== false) ws.send(hello(path));
      ws.on('message', (data, binary) => ws.send(data, { binary }));
    });
  });
  return {
    ...origin,
    wss,
    upgrades,
    close: async () => {
      for (const client of wss.clients) client.terminate();
      wss.close();
      for (const socket of sockets) socket.destroy();
      await origin.close();
    },
  };
}
