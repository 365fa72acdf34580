import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Cluster, Redis } from 'ioredis';
import { Kafka, logLevel } from 'kafkajs';
import { createRedisClient, whenReady } from '../redis/client.js';
import { stopIdleRequestQueueChecks } from '../snapshot-bus/kafkajs-idle-checks.js';
import { uniqueSuffix } from './infrastructure.js';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js';

/**
 * The Redis Cluster (3 masters + 3 replicas) and the three-broker Kafka that `make test-cluster` starts
 * through infra/ (infra/redis-cluster.sh, infra/kafka-cluster.sh), for the `cluster` test project.
 * Tests in that project run one file at a time: some kill a Redis master or a Kafka broker, and each
 * such test brings the cluster back to full health (`restoreClusters`) before it ends.
 */

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const DATA = process.env['VE_DATA'] ?? path.join(ROOT, '.data');
const run = promisify(execFile);

const redisBase = Number(process.env['VE_REDIS_CLUSTER_PORT'] ?? 16_100);
const kafkaBase = Number(process.env['VE_KAFKA_CLUSTER_PORT'] ?? 16_200);

export const TEST_CLUSTER = {
  redisNodes: Array.from({ length: 6 }, (_, i) => `127.0.0.1:${redisBase + i}`),
  kafkaBrokers: Array.from({ length: 3 }, (_, i) => `127.0.0.1:${kafkaBase + i}`),
} as const;

/** A Cluster client built the way the services build theirs (createRedisClient with cluster nodes). */
export async function createClusterClient(name = 've-test', commandTimeoutMs = 2_000): Promise<Cluster> {
  const client = createRedisClient({
    clusterNodes: TEST_CLUSTER.redisNodes,
    commandTimeoutMs,
    connectTimeoutMs: 2_000,
    name,
  }) as Cluster;
  client.on('error', () => {});
  await whenReady(client, 20_000);
  return client;
}

export interface TestRedisCluster {
  client: Cluster;
  /** Every key this test file writes starts with it, e.g. `ve-test-ratelimit-lx3k9a2b:`. */
  prefix: string;
  key(name: string): string;
  /** Deletes this file's keys on every master (never FLUSHALL), then closes the client. */
  cleanup(): Promise<void>;
}

/** Deletes every key starting with `prefix` on every master of the cluster. */
export async function deleteClusterKeys(client: Cluster, prefix: string): Promise<void> {
  await Promise.all(
    client.nodes('master').map(async (node) => {
      let cursor = '0';
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
        // One key per call: keys of one SCAN page may sit in different slots.
        for (const key of keys) await node.unlink(key).catch(() => {});
        cursor = next;
      } while (cursor !== '0');
    }),
  );
}

export async function createTestRedisCluster(purpose = 'test'): Promise<TestRedisCluster> {
  const client = await createClusterClient(`ve-test-${purpose}`);
  const prefix = `ve-test-${purpose}-${uniqueSuffix()}:`;
  return {
    client,
    prefix,
    key: (name) => `${prefix}${name}`,
    async cleanup() {
      await deleteClusterKeys(client, prefix).catch(() => {});
      client.disconnect();
    },
  };
}

export function createClusterKafka(clientId = `ve-test-${uniqueSuffix()}`): Kafka {
  stopIdleRequestQueueChecks();
  return new Kafka({
    clientId,
    brokers: [...TEST_CLUSTER.kafkaBrokers],
    logLevel: logLevel.NOTHING,
    retry: { retries: 8, initialRetryTime: 200, maxRetryTime: 2_000 },
  });
}

async function infra(...args: string[]): Promise<void> {
  await run('bash', [path.join(ROOT, 'infra/infra.sh'), ...args], { timeout: 240_000 });
}

/** Starts both clusters (idempotent: what runs is left alone). */
export async function startClusters(): Promise<void> {
  await infra('up', 'redis-cluster', 'kafka-cluster');
}

/** Starts whatever node of either cluster is not running and waits until both are fully healthy. */
export async function restoreClusters(): Promise<void> {
  await startClusters();
}

/** Starts whatever Redis Cluster node is not running and waits until the Redis Cluster is fully healthy. */
export async function restoreRedisCluster(): Promise<void> {
  await infra('up', 'redis-cluster');
}

async function pidOf(file: string): Promise<number> {
  const pid = Number((await readFile(file, 'utf8')).trim());
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`no pid in ${file}`);
  return pid;
}

/** SIGKILL of one Redis Cluster node (a crash: no shutdown, no last save); `restoreClusters` restarts it. */
export async function killRedisNode(address: string): Promise<void> {
  const port = address.split(':')[1]!;
  process.kill(await pidOf(path.join(DATA, 'redis-cluster', port, 'redis.pid')), 'SIGKILL');
}

/**
 * SIGSTOP of one Redis Cluster node: it hangs with its connections open, answering nothing (a stall,
 * a frozen VM). End it with `killRedisNode` (SIGKILL ends a stopped process), then `restoreClusters`.
 */
export async function pauseRedisNode(address: string): Promise<void> {
  const port = address.split(':')[1]!;
  process.kill(await pidOf(path.join(DATA, 'redis-cluster', port, 'redis.pid')), 'SIGSTOP');
}

/** SIGKILL of Kafka broker `node` (1-3); `restoreClusters` restarts it with its data. */
export async function killKafkaBroker(node: number): Promise<void> {
  process.kill(await pidOf(path.join(DATA, 'kafka-cluster', `node-${node}`, 'kafka.pid')), 'SIGKILL');
}

type SlotRange = [from: number, to: number, master: [host: string, port: number, ...rest: unknown[]]];

async function slotRanges(client: Cluster | Redis): Promise<SlotRange[]> {
  return (await client.cluster('SLOTS')) as unknown as SlotRange[];
}

/** The master serving `key`'s slot, as host:port ('' when no node serves it); any node can answer. */
export async function masterOf(client: Cluster | Redis, key: string): Promise<string> {
  const slot = Number(await client.cluster('KEYSLOT', key));
  const range = (await slotRanges(client)).find(([from, to]) => slot >= from && slot <= to);
  return range ? `${range[2][0]}:${range[2][1]}` : '';
}

/** Every master serving slots, as host:port, sorted. */
export async function masterAddresses(client: Cluster | Redis): Promise<string[]> {
  return [...new Set((await slotRanges(client)).map(([, , [host, port]]) => `${host}:${port}`))].sort();
}

/** The test cluster's nodes, each reached through a TCP proxy of its own (see proxiedClusterNodes). */
export interface ProxiedClusterNodes {
  /** What a client gives as `natMap`: each node's proxy address, so MOVED answers lead there too. */
  natMap: Record<string, { host: string; port: number }>;
  /** The proxies' addresses, as a client's seeds. */
  seeds: string[];
  /** The proxy in front of each node (`host:port` as TEST_CLUSTER names it). */
  proxyOf: Map<string, TcpProxy>;
}

/**
 * Starts a TCP proxy in front of every node of the test cluster (each also pushed to `started`, for the
 * file to close), so a test can cut, stall or blackhole one node's connections while the node lives on.
 */
export async function proxiedClusterNodes(started: TcpProxy[]): Promise<ProxiedClusterNodes> {
  const natMap: ProxiedClusterNodes['natMap'] = {};
  const proxyOf = new Map<string, TcpProxy>();
  for (const node of TEST_CLUSTER.redisNodes) {
    const proxy = await startTcpProxy(`redis://${node}`);
    started.push(proxy);
    proxyOf.set(node, proxy);
    const { hostname, port } = new URL(proxy.urlFor(`redis://${node}`));
    natMap[node] = { host: hostname, port: Number(port) };
  }
  return { natMap, seeds: Object.values(natMap).map(({ host, port }) => `${host}:${port}`), proxyOf };
}
