import net from 'node:net';

/**
 * A TCP proxy in front of PostgreSQL, for tests of connections lost between the client and the server
 * while the server's sessions live on (a proxy or load balancer that drops its client's side, an idle
 * timeout): PostgreSQL hears nothing of it, so a statement it was sent keeps running and may commit.
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
}

/** A proxy on 127.0.0.1 (a free port) to the host and port of the PostgreSQL connection string `target`. */
export async function startTcpProxy(target: string): Promise<TcpProxy> {
  const { hostname, port } = new URL(target);
  const pairs = new Set<Pair>();
  const listener = net.createServer((client) => {
    const server = net.connect(Number(port || 5432), hostname);
    const pair: Pair = { client, server, dropped: false, silent: false };
    pairs.add(pair);
    client.on('error', () => undefined);
    server.on('error', () => undefined);
    client.on('data', (chunk) => {
      if (pair.silent) {
        pair.dropped = true;
        client.resetAndDestroy();
        return;
      }
      server.write(chunk);
    });
    server.on('data', (chunk) => {
      if (!pair.dropped && !client.destroyed) client.write(chunk);
    });
    client.on('close', () => {
      if (!pair.dropped) server.destroy();
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
