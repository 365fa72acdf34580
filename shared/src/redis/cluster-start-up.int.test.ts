import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisClient, type RedisClient } from './client.js';

/**
 * A Cluster client that has not learnt its slot table yet (a replica starting while the cluster's
 * nodes accept connections and answer nothing: frozen, or a partition) holds every call to the same
 * bound as once it has: a command fails within the command timeout, never waits for the topology.
 */
describe('a Redis Cluster client before it knows its slots', () => {
  const COMMAND_TIMEOUT_MS = 50;
  const sockets = new Set<net.Socket>();
  let frozenNode: net.Server;
  const clients: RedisClient[] = [];

  beforeAll(async () => {
    frozenNode = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => frozenNode.listen(0, '127.0.0.1', resolve));
  });

  afterAll(async () => {
    for (const client of clients) client.disconnect();
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => frozenNode.close(() => resolve()));
  });

  it.each([true, false])(
    'fails a call while the topology query still waits (auto-pipelining: %s)',
    async (autoPipelining) => {
      const { port } = frozenNode.address() as net.AddressInfo;
      const client = createRedisClient({
        clusterNodes: [`127.0.0.1:${port}`],
        commandTimeoutMs: COMMAND_TIMEOUT_MS,
        // Far longer than the command timeout: the topology query is still unanswered when the call fails.
        connectTimeoutMs: 20_000,
        autoPipelining,
        name: `cluster-start-up-${autoPipelining}`,
      });
      client.on('error', () => undefined);
      clients.push(client);
      const call = client.eval('return 1', 1, '{tenant}:key');
      const failure = await call.then(
        () => null,
        (error: Error) => error,
      );
      expect(failure).toBeInstanceOf(Error);
      // Still connecting: the call did not wait for the client to give the topology query up.
      expect(client.status).toBe('connecting');
    },
  );
});
