import type { Server, Socket } from 'node:net';

/**
 * One GATEWAY_MAX_CONNECTIONS budget for every traffic listener of a replica (the plain port with its
 * h2c connections, and the TLS port with its HTTPS/1.1 connections and HTTP/2 sessions), as nginx's and
 * Kong's worker_connections count every listener: the limit bounds what the process holds (sockets,
 * file descriptors, parser and TLS memory), whichever port the connections came in on.
 *
 * Each server keeps node's own check (a connection over the limit is closed on arrival, before any TLS
 * handshake or parsing, and the server emits `drop`): its `maxConnections` becomes what the budget
 * leaves after the connections the other listeners hold.
 */
export function shareConnectionBudget(servers: readonly Server[], limit: number): ConnectionBudget {
  let budget = limit;
  const open = new Map<Server, number>();
  let total = 0;
  const counted = new WeakSet<Socket>();
  const hold = (server: Server, socket: Socket) => {
    if (counted.has(socket)) return;
    counted.add(socket);
    open.set(server, (open.get(server) ?? 0) + 1);
    total += 1;
    socket.once('close', () => {
      open.set(server, (open.get(server) ?? 1) - 1);
      total -= 1;
    });
  };
  for (const server of servers) {
    open.set(server, 0);
    server.on('connection', (socket: Socket) => hold(server, socket));
    // node compares its own open connections with this on every accept (0 or less: every one is dropped).
    Object.defineProperty(server, 'maxConnections', {
      configurable: true,
      enumerable: true,
      get: () => budget - (total - (open.get(server) ?? 0)),
      set: (value: number) => {
        budget = value;
      },
    });
  }
  return { hold };
}

export interface ConnectionBudget {
  /**
   * Counts `socket` of `server` from now until it closes (once, however often it is called): for a
   * connection node accepted that the server's `connection` listeners see only later (its PROXY
   * protocol header still to come), as node's own count of the server does.
   */
  hold(server: Server, socket: Socket): void;
}
