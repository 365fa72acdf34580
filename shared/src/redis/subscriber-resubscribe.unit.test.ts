import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createRedisClient, duplicateForSubscribe, type RedisClient } from './client.js';

/**
 * A Redis stand-in speaking just enough RESP for a subscriber: the first SUBSCRIBE is answered, then its
 * connection drops; later connections (the reconnect) get the handshake answered but never a SUBSCRIBE,
 * as from a server too busy to answer in time after an outage.
 */
async function startStallingResubscribeServer(): Promise<{
  url: string;
  /** Connections that were sent a SUBSCRIBE after the first one, unanswered. */
  resubscribingConnections: () => number;
  close: () => Promise<void>;
}> {
  const sockets = new Set<net.Socket>();
  let subscribed = false;
  const resubscribing = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.once('close', () => sockets.delete(socket));
    let buffered = '';
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      for (;;) {
        const command = takeCommand();
        if (command === undefined) return;
        const name = command[0]?.toLowerCase();
        if (name === 'info') {
          const info = '# Server\r\nredis_version:7.0.0\r\nloading:0\r\n';
          socket.write(`$${info.length}\r\n${info}\r\n`);
        } else if (name === 'subscribe') {
          if (subscribed) {
            resubscribing.add(socket);
            continue;
          }
          subscribed = true;
          for (const [i, channel] of command.slice(1).entries())
            socket.write(`*3\r\n$9\r\nsubscribe\r\n$${channel.length}\r\n${channel}\r\n:${i + 1}\r\n`);
          // Subscribed: the connection drops (an outage), and the client reconnects.
          setTimeout(() => socket.destroy(), 50);
        } else if (name === 'client' || name === 'select') socket.write('+OK\r\n');
        // As a Redis before 6 (no RESP3): the client goes on in RESP2.
        else socket.write(`-ERR unknown command '${name}'\r\n`);
      }
    });
    /** One complete RESP array of bulk strings off the front of the buffer, if there is one. */
    const takeCommand = (): string[] | undefined => {
      const lines = buffered.split('\r\n');
      const count = Number(lines[0]?.slice(1));
      if (!lines[0]?.startsWith('*') || lines.length < 1 + 2 * count + 1) return undefined;
      const args = Array.from({ length: count }, (_, i) => lines[2 + 2 * i] as string);
      buffered = lines.slice(1 + 2 * count).join('\r\n');
      return args;
    };
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `redis://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    resubscribingConnections: () => resubscribing.size,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

const clients: RedisClient[] = [];
const closers: Array<() => Promise<void>> = [];
const escaped: unknown[] = [];
const onEscaped = (reason: unknown) => escaped.push(reason);

afterEach(async () => {
  process.off('unhandledRejection', onEscaped);
  for (const client of clients.splice(0)) client.disconnect();
  for (const close of closers.splice(0)) await close();
  escaped.length = 0;
});

describe('a subscriber whose resubscription after a reconnect is not answered in time', () => {
  it('leaves no unhandled rejection and subscribes again on a new connection', async () => {
    process.on('unhandledRejection', onEscaped);
    const server = await startStallingResubscribeServer();
    closers.push(server.close);
    const client = createRedisClient({ url: server.url, commandTimeoutMs: 100, name: 'resubscribe-test' });
    clients.push(client);
    const subscriber = duplicateForSubscribe(client, { pingIntervalMs: 60_000 });
    clients.push(subscriber);
    subscriber.on('error', () => {});
    await subscriber.subscribe('purges');
    const readyAgain = new Promise<void>((resolve) => subscriber.once('ready', () => resolve()));
    await readyAgain;
    // Past the command timeout of the SUBSCRIBE ioredis sent by itself on the new connection.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(escaped.map(String)).toEqual([]);
    // Not left subscribed to nothing: the unanswered SUBSCRIBE goes again, on a new connection.
    for (let waited = 0; server.resubscribingConnections() < 2 && waited < 10_000; waited += 100)
      await new Promise((resolve) => setTimeout(resolve, 100));
    expect(server.resubscribingConnections()).toBeGreaterThanOrEqual(2);
  }, 20_000);
});
