import { afterAll, describe, expect, it } from 'vitest';
import { createTestRedisCluster, masterOf, TEST_CLUSTER } from '../testing/cluster.js';
import { startTcpProxy, type TcpProxy } from '../testing/tcp-proxy.js';
import { createRedisClient, type RedisClient, whenReady } from './client.js';

/**
 * A Cluster client whose connection to a master stops answering (a partition, a NAT that forgot the
 * flow) replaces it after its socket timeout, as the single server's client does, and a command its
 * caller was told had failed is not sent again on the new one: it would run after the caller decided
 * without it (a limit charged for a request answered 503, a quota counted twice).
 */
const cluster = await createTestRedisCluster('unanswered-commands');
const clients: RedisClient[] = [];
const proxies: TcpProxy[] = [];

afterAll(async () => {
  for (const client of clients) client.disconnect();
  await Promise.all(proxies.map((proxy) => proxy.close()));
  await cluster.cleanup();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('a Cluster command whose connection stopped answering', () => {
  it('is not sent again once its connection is replaced', async () => {
    const natMap: Record<string, { host: string; port: number }> = {};
    const byNode = new Map<string, TcpProxy>();
    for (const node of TEST_CLUSTER.redisNodes) {
      const proxy = await startTcpProxy(`redis://${node}`);
      proxies.push(proxy);
      byNode.set(node, proxy);
      const { hostname, port } = new URL(proxy.urlFor(`redis://${node}`));
      natMap[node] = { host: hostname, port: Number(port) };
    }
    const client = createRedisClient({
      clusterNodes: Object.values(natMap).map(({ host, port }) => `${host}:${port}`),
      natMap,
      commandTimeoutMs: 50,
      connectTimeoutMs: 300,
      name: 'unanswered-commands',
    });
    client.on('error', () => undefined);
    clients.push(client);
    await whenReady(client, 20_000);
    const key = cluster.key('{tenant-unanswered}:count');
    expect(await client.set(key, '0')).toBe('OK');
    // The INCR's bytes are lost on the way: Redis never runs it.
    byNode.get(await masterOf(cluster.client, key))!.blackholeOpenConnections();
    await expect(client.incr(key)).rejects.toThrow('Command timed out');
    // Its connection is replaced after 300 ms of silence; the client answers again through a new one.
    let answered: string | null = null;
    for (let i = 0; i < 100 && answered === null; i++) {
      answered = await client.get(key).catch(() => null);
      if (answered === null) await sleep(50);
    }
    expect(answered).toBe('0');
    // Past ioredis' failover delay (100 ms) after the old connection closed, when it sends commands again.
    await sleep(500);
    expect(await cluster.client.get(key)).toBe('0');
  });
});
