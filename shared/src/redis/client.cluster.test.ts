import net from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createClusterClient,
  createTestRedisCluster,
  masterOf,
  proxiedClusterNodes,
  TEST_CLUSTER,
} from '../testing/cluster.js';
import type { TcpProxy } from '../testing/tcp-proxy.js';
import {
  createRedisClient,
  duplicateForSubscribe,
  parseClusterNode,
  type RedisClient,
  type RedisClientOptions,
  whenReady,
} from './client.js';

const redis = await createTestRedisCluster('client');
const extra: RedisClient[] = [];
const servers: net.Server[] = [];
const proxies: TcpProxy[] = [];

afterAll(async () => {
  for (const client of extra) client.disconnect();
  for (const server of servers) server.close();
  await Promise.all(proxies.map((proxy) => proxy.close()));
  await redis.cleanup();
});

/** A TCP proxy to `target` that holds every reply for `delayMs`: a slow link, or a busy client host. */
async function startSlowLink(target: string, delayMs: number): Promise<{ host: string; port: number }> {
  const { host, port } = parseClusterNode(target);
  const server = net.createServer((client) => {
    const upstream = net.connect(port, host);
    client.pipe(upstream);
    upstream.on('data', (chunk: Buffer) => setTimeout(() => client.writable && client.write(chunk), delayMs));
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { host: '127.0.0.1', port: (server.address() as net.AddressInfo).port };
}

/** The connection a Cluster client subscribes through (ioredis keeps it private). */
function subscribeConnectionOf(cluster: RedisClient): Redis | null {
  const subscriber: unknown = Reflect.get(cluster, 'subscriber');
  const connection: unknown = (subscriber as { getInstance?: () => unknown } | null)?.getInstance?.();
  return connection instanceof Redis ? connection : null;
}

/** A client reaching every node of the cluster only through a TCP proxy of its own, once ready. */
async function clientThroughProxies(
  name: string,
  options: Pick<RedisClientOptions, 'connectTimeoutMs'> = {},
): Promise<{ client: RedisClient; proxies: TcpProxy[] }> {
  const own: TcpProxy[] = [];
  const { natMap, seeds } = await proxiedClusterNodes(own);
  proxies.push(...own);
  const client = createRedisClient({
    clusterNodes: seeds,
    natMap,
    ...options,
    name,
  });
  extra.push(client);
  client.on('error', () => {});
  await whenReady(client, 20_000);
  return { client, proxies: own };
}

/**
 * A subscribe copy of `client` (pinged every 200 ms) subscribed to `channel`; `publishUntilReceived`
 * publishes `text` there until the copy receives it (false: it never did).
 */
async function subscribedCopy(client: RedisClient, channel: string) {
  const subscriber = duplicateForSubscribe(client, { pingIntervalMs: 200 });
  extra.push(subscriber);
  subscriber.on('error', () => {});
  const received: string[] = [];
  subscriber.on('message', (_channel: string, text: string) => received.push(text));
  await subscriber.subscribe(channel);
  const publishUntilReceived = async (text: string): Promise<boolean> => {
    for (let i = 0; i < 200; i++) {
      await redis.client.publish(channel, text);
      await new Promise((resolve) => setTimeout(resolve, 50));
      if (received.includes(text)) return true;
    }
    return false;
  };
  return { subscriber, publishUntilReceived };
}

describe('the Redis client on a Redis Cluster', () => {
  // Regression test: the subscribe copy of a Cluster client inherited `enableOfflineQueue: false`, so its
  // SUBSCRIBE (sent at once, before the copy had discovered the cluster) failed and no cache purge
  // message ever reached a gateway running against a Redis Cluster.
  it('a subscribe connection made from it receives messages published right after it was made', async () => {
    const client = await createClusterClient('client-test');
    extra.push(client);
    const subscriber = duplicateForSubscribe(client);
    extra.push(subscriber);
    subscriber.on('error', () => {});
    const received: string[] = [];
    subscriber.on('message', (_channel: string, text: string) => received.push(text));
    const channel = redis.key('channel');
    await subscriber.subscribe(channel);
    await client.publish(channel, 'purge');
    for (let i = 0; i < 100 && received.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(received).toEqual(['purge']);
  });

  // Regression test: the subscribe copy's connection (ioredis makes it itself, to one node) was never
  // pinged; dead without a word (a NAT or load balancer that forgot the flow), it went unnoticed and no
  // cache purge reached the gateway again.
  it('a subscribe connection dead without a word is replaced and receives messages again', async () => {
    const { client, proxies: own } = await clientThroughProxies('client-test-silent-subscriber');
    const { publishUntilReceived } = await subscribedCopy(client, redis.key('silent'));
    expect(await publishUntilReceived('before')).toBe(true);

    for (const proxy of own) proxy.blackholeOpenConnections();
    expect(await publishUntilReceived('after')).toBe(true);
  }, 60_000);

  // Regression test: ioredis gives its subscribe connection no retry and no ready timeout. Moved to a node
  // that accepts connections but answers nothing (a frozen node: its kernel still accepts), it waited for
  // that node's answer for ever, and no cache purge reached the gateway while the rest of the cluster
  // answered.
  it('a subscribe connection moved to a node that never answers is given up and moved again', async () => {
    const { client, proxies: own } = await clientThroughProxies('client-test-frozen-node', {
      connectTimeoutMs: 1_000,
    });
    const { subscriber, publishUntilReceived } = await subscribedCopy(client, redis.key('frozen'));
    expect(await publishUntilReceived('before')).toBe(true);

    // Every node goes silent: the PING goes unanswered, and the subscriber moves to a node still silent.
    const first = subscribeConnectionOf(subscriber);
    for (const proxy of own) proxy.stall(true);
    let opening = first;
    for (let i = 0; i < 200 && (opening === first || opening?.status === 'wait'); i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      opening = subscribeConnectionOf(subscriber);
    }
    expect(opening).not.toBe(first);
    // Every other node answers again; that one stays silent.
    const silent = own.find(
      (proxy) => new URL(proxy.urlFor('redis://x:1')).port === String(opening?.options.port),
    );
    for (const proxy of own) if (proxy !== silent) proxy.stall(false);
    try {
      expect(await publishUntilReceived('after')).toBe(true);
    } finally {
      silent?.stall(false);
    }
  }, 60_000);

  // Regression test: ioredis timed the topology query (CLUSTER SLOTS) and the ready check with the
  // 50 ms command timeout, on connections it had just opened; on a busy host (8 replicas starting on
  // two cores) a gateway replica stayed without Redis for a minute or more.
  it('connects over links slower than the command timeout, and commands still time out at it', async () => {
    const natMap: Record<string, { host: string; port: number }> = {};
    for (const node of TEST_CLUSTER.redisNodes) natMap[node] = await startSlowLink(node, 120);
    const client = createRedisClient({
      clusterNodes: Object.values(natMap).map(({ host, port }) => `${host}:${port}`),
      natMap,
      commandTimeoutMs: 50,
      connectTimeoutMs: 2_000,
      name: 'client-test-slow-link',
    });
    extra.push(client);
    client.on('error', () => {});
    await whenReady(client, 20_000);
    await expect(client.get(redis.key('{slow}:k'))).rejects.toThrow(/timed out/);
    // The subscribe copy discovers the cluster over the same slow links.
    const subscriber = duplicateForSubscribe(client);
    extra.push(subscriber);
    subscriber.on('error', () => {});
    await whenReady(subscriber, 20_000);
  }, 60_000);

  it('routes keys of different hash tags to different masters and runs a script on one slot', async () => {
    const { client } = redis;
    const masters = new Set<string>();
    for (let tenant = 0; tenant < 12; tenant++) {
      const key = redis.key(`{tenant-${tenant}}:k`);
      await client.set(key, String(tenant));
      expect(await client.get(key)).toBe(String(tenant));
      masters.add(await masterOf(client, key));
    }
    expect(masters.size).toBe(3);
    // Two keys with one hash tag: a multi-key script is accepted; without a shared tag it is refused.
    const same = [redis.key('{t}:a'), redis.key('{t}:b')];
    expect(await client.eval("return redis.call('MSET', KEYS[1], 1, KEYS[2], 2)", 2, ...same)).toBe('OK');
    await expect(
      client.eval("return redis.call('MSET', KEYS[1], 1, KEYS[2], 2)", 2, redis.key('x:a'), redis.key('y:b')),
    ).rejects.toThrow(/CROSSSLOT|same slot/);
  });
});
