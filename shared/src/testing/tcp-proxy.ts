import net from 'node:net';

/**
 * A TCP proxy in front of a server (PostgreSQL, a Kafka broker), for tests of connections lost between
 * the client and the server while the server's side lives on (a proxy or load balancer that drops its
 * client's side, an idle timeout, a middlebox that delivers a request late): the server hears nothing of
 * it, so a statement it was sent keeps running and may commit, and a request held back still lands.
 */
export interface TcpProxy {
  /** `url` (a PostgreSQL connection string) with its host and port replaced by the proxy's. */
  urlFor(url: string): string;
  /**
   * Closes the client's side of every connection through it at once, as a proxy that drops them does;
   * the server's side stays open, so each session goes on (a running statement still commits).
   */
  cutClientSide(): void;
  /**
   * Every connection through it is now dead without a word, as after a proxy's idle timeout: the next
   * bytes its client sends are answered with a reset; the server's side stays open, its session idle.
   */
  dropSilently(): void;
  /**
   * Keeps, from now on, the bytes clients send through the connections open now instead of passing
   * them on, as a middlebox holding them; such a connection's server side stays open even when its
   * client's side closes, until releaseHeld().
   */
  holdOpenConnections(): void;
  /**
   * Every connection open now passes nothing either way from now on, and neither side hears of it (a
   * partition, a NAT or load balancer that forgot the flow): the bytes are lost. New connections pass.
   */
  blackholeOpenConnections(): void;
  /** Bytes held so far (holdOpenConnections), not yet released. */
  heldBytes(): number;
  /** Passes what was held on to the server, and every byte after it; nothing is held any more. */
  releaseHeld(): void;
  /** While on, every new connection is closed as soon as it is accepted (the server is unreachable). */
  refuseConnections(refuse: boolean): void;
  /**
   * While on, every connection, open now or opened later, passes nothing either way and neither side hears
   * of it (a server frozen by its disk, a stalled link): the bytes wait in the proxy. Turned off, what
   * waited is passed on in order and the connections go on as if the server had only been slow.
   */
  stall(stalled: boolean): void;
  /**
   * From now on every byte the server sends reaches its client `ms` later, in order (a slow server or
   * link: each answer late, none lost); 0 passes them at once again, after those still on their way.
   */
  delayAnswers(ms: number): void;
  /** Connections opened through it so far (each one a connection its client made to the server). */
  connectionsOpened(): number;
  /** Closes every connection (both sides) and the listener. */
  close(): Promise<void>;
}

interface Pair {
  client: net.Socket;
  server: net.Socket;
  /** The client's side was dropped: the server's side stays open. */
  dropped: boolean;
  /** The next client bytes reset the client's side. */
  silent: boolean;
  /** The client's bytes kept back (holdOpenConnections), or null while they are passed on. */
  held: Buffer[] | null;
  /** Nothing passes either way (blackholeOpenConnections). */
  blackholed: boolean;
  /** Bytes waiting while the proxy stalls (stall), each with the side it goes to, in order. */
  stalled: Array<{ to: net.Socket; chunk: Buffer }>;
  /** The server's bytes on their way to the client (delayAnswers), each with when it is due, in order. */
  delayed: Array<{ chunk: Buffer; due: number }>;
}

/**
 * A proxy on 127.0.0.1 (a free port) to the host and port of the URL `target` (a PostgreSQL connection
 * string, or e.g. `kafka://127.0.0.1:59092`).
 */
export async function startTcpProxy(target: string): Promise<TcpProxy> {
  const { hostname, port } = new URL(target);
  const pairs = new Set<Pair>();
  let refusing = false;
  let stalling = false;
  let answerDelayMs = 0;
  let opened = 0;
  /** Passes `chunk` on to `to`, or keeps it while the proxy stalls. */
  const pass = (pair: Pair, to: net.Socket, chunk: Buffer) => {
    if (stalling) pair.stalled.push({ to, chunk });
    else if (!to.destroyed) to.write(chunk);
  };
  /** Writes the server's bytes that are due to the client, then waits for the next one's time. */
  const deliverDue = (pair: Pair) => {
    while (pair.delayed.length > 0 && pair.delayed[0]!.due <= Date.now()) {
      const { chunk } = pair.delayed.shift()!;
      if (!pair.dropped) pass(pair, pair.client, chunk);
    }
    const next = pair.delayed[0];
    if (next) setTimeout(() => deliverDue(pair), Math.max(0, next.due - Date.now()));
  };
  const listener = net.createServer((client) => {
    if (refusing) {
      client.on('error', () => undefined);
      client.destroy();
      return;
    }
    const server = net.connect(Number(port || 5432), hostname);
    const pair: Pair = {
      client,
      server,
      dropped: false,
      silent: false,
      held: null,
      blackholed: false,
      stalled: [],
      delayed: [],
    };
    pairs.add(pair);
    opened += 1;
    client.on('error', () => undefined);
    server.on('error', () => undefined);
    client.on('data', (chunk) => {
      if (pair.blackholed) return;
      if (pair.silent) {
        pair.dropped = true;
        client.resetAndDestroy();
        return;
      }
      if (pair.held) pair.held.push(chunk);
      else pass(pair, server, chunk);
    });
    server.on('data', (chunk) => {
      if (pair.dropped) return;
      if (answerDelayMs === 0 && pair.delayed.length === 0) {
        pass(pair, client, chunk);
        return;
      }
      const due = Math.max(Date.now() + answerDelayMs, pair.delayed.at(-1)?.due ?? 0);
      pair.delayed.push({ chunk, due });
      if (pair.delayed.length === 1) setTimeout(() => deliverDue(pair), Math.max(0, due - Date.now()));
    });
    client.on('close', () => {
      if (!pair.dropped && !pair.held) server.destroy();
    });
    server.on('close', () => {
      client.destroy();
      pairs.delete(pair);
    });
  });
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const address = listener.address() as net.AddressInfo;
  return {
    urlFor(url) {
      const proxied = new URL(url);
      proxied.hostname = '127.0.0.1';
      proxied.port = String(address.port);
      return proxied.toString();
    },
    cutClientSide() {
      for (const pair of pairs) {
        pair.dropped = true;
        pair.client.destroy();
      }
    },
    dropSilently() {
      for (const pair of pairs) pair.silent = true;
    },
    blackholeOpenConnections() {
      for (const pair of pairs) {
        pair.blackholed = true;
        // The server's side stays open whatever the client's does, and sends nothing on.
        pair.dropped = true;
      }
    },
    holdOpenConnections() {
      for (const pair of pairs) pair.held ??= [];
    },
    heldBytes() {
      let bytes = 0;
      for (const pair of pairs) for (const chunk of pair.held ?? []) bytes += chunk.length;
      return bytes;
    },
    releaseHeld() {
      for (const pair of pairs) {
        if (!pair.held) continue;
        for (const chunk of pair.held) pair.server.write(chunk);
        pair.held = null;
      }
    },
    refuseConnections(refuse) {
      refusing = refuse;
    },
    stall(stalled) {
      stalling = stalled;
      if (stalled) return;
      for (const pair of pairs) {
        for (const { to, chunk } of pair.stalled.splice(0)) if (!to.destroyed) to.write(chunk);
      }
    },
    delayAnswers(ms) {
      answerDelayMs = ms;
    },
    connectionsOpened() {
      return opened;
    },
    async close() {
      for (const pair of pairs) {
        pair.dropped = true;
        pair.client.destroy();
        pair.server.destroy();
      }
      await new Promise<void>((resolve) => listener.close(() => resolve()));
    },
  };
}
