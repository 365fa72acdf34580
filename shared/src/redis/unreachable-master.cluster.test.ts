import { type ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import type { Cluster } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestRedisCluster, masterOf, proxiedClusterNodes } from '../testing/cluster.js';
import type { TcpProxy } from '../testing/tcp-proxy.js';
import { createRedisClient, whenReady } from './client.js';

/**
 * A master whose host stopped answering altogether (its machine down, a partition): a new connection to
 * it never completes. The Cluster client opens one for the master's slots, and every call for them
 * made meanwhile fails within the command timeout, as with a master that is down, rather than being
 * held for ioredis' failover retries while that connection waits.
 */
const cluster = await createTestRedisCluster('unreachable-master');
const clients: Cluster[] = [];
const proxies: TcpProxy[] = [];
const sockets: net.Socket[] = [];
const unreachable: ChildProcess[] = [];

afterAll(async () => {
  for (const client of clients) client.disconnect();
  for (const socket of sockets) socket.destroy();
  for (const listener of unreachable) listener.kill();
  await Promise.all(proxies.map((proxy) => proxy.close()));
  await cluster.cleanup();
});

/**
 * An address whose connections never complete, as a host that is gone: a listening socket that accepts
 * nothing, its queue full, so the kernel drops the next SYNs. Python's, since a Node listener accepts
 * every connection by itself.
 */
async function unreachableAddress(): Promise<{ host: string; port: number }> {
  const listener = spawn('python3', [
    '-c',
    "import socket,time\ns=socket.socket()\ns.bind(('127.0.0.1',0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\ntime.sleep(600)",
  ]);
  unreachable.push(listener);
  const port = await new Promise<number>((resolve) =>
    listener.stdout!.once('data', (data: Buffer) => resolve(Number(String(data).trim()))),
  );
  for (let i = 0; i < 3; i++) sockets.push(net.connect(port, '127.0.0.1').on('error', () => undefined));
  await new Promise((resolve) => setTimeout(resolve, 100));
  return { host: '127.0.0.1', port };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** The client's topology queries wait this long for a node (REDIS_CONNECT_TIMEOUT_MS). */
const CONNECT_TIMEOUT_MS = 3_000;

describe('a Cluster master that cannot be reached any more', () => {
  it.each([false, true])(
    'fails the calls for its slots within the command timeout, not after a topology query (auto-pipelining: %s)',
    async (autoPipelining) => {
      const { natMap, seeds, proxyOf: byNode } = await proxiedClusterNodes(proxies);
      const nodeProxies = [...byNode.values()];
      const client = createRedisClient({
        clusterNodes: seeds,
        natMap,
        commandTimeoutMs: 50,
        connectTimeoutMs: CONNECT_TIMEOUT_MS,
        autoPipelining,
        name: `unreachable-master-${autoPipelining}`,
      }) as Cluster;
      client.on('error', () => undefined);
      clients.push(client);
      await whenReady(client, 20_000);
      const key = cluster.key(`{tenant-unreachable-${autoPipelining}}:count`);
      expect(await client.set(key, '0')).toBe('OK');
      // From now on the master's address leads nowhere; its open connection closes, and the client,
      // learning the slot table again, makes a new one (opened by the first call for its slots).
      const master = await masterOf(cluster.client, key);
      natMap[master] = await unreachableAddress();
      byNode.get(master)!.cutClientSide();
      await new Promise<void>((resolve, reject) =>
        client.refreshSlotsCache((error) => (error ? reject(error) : resolve())),
      );
      // The other nodes answer nothing more either: a topology query waits CONNECT_TIMEOUT_MS for each.
      for (const proxy of nodeProxies) proxy.stall(true);
      const call = () =>
        client.get(key).then(
          () => null,
          (error: Error) => error,
        );
      // The first call opens the master's new connection; the next ones, a turn later (auto-pipelined:
      // a pipeline of their own), find it still opening.
      const opening = call();
      await new Promise((resolve) => setImmediate(resolve));
      const calls = [opening, ...Array.from({ length: 5 }, call)];
      const first = await Promise.race([
        Promise.all(calls).then(() => 'the calls failed'),
        sleep(CONNECT_TIMEOUT_MS).then(() => 'a topology query gave up'),
      ]);
      for (const proxy of nodeProxies) proxy.stall(false);
      expect(first).toBe('the calls failed');
      expect((await Promise.all(calls)).every((failure) => failure instanceof Error)).toBe(true);
    },
  );
});
