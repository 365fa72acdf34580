import type http from 'node:http';
import type { TenantSnapshot } from '@vantageedge/shared/domain/gateway-config';
import { ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK } from '@vantageedge/shared/net/origin-address-policy';
import { createKafkaSnapshotBus } from '@vantageedge/shared/snapshot-bus/kafka-snapshot-bus';
import type { SnapshotMessage } from '@vantageedge/shared/snapshot-bus/port';
import { TEST_INFRA, uniqueSuffix } from '@vantageedge/shared/testing/infrastructure';
import { createTestKafka, uniqueTopic } from '@vantageedge/shared/testing/kafka';
import { Redis } from 'ioredis';
import {
  ENTRY_POINTS,
  type HttpResponse,
  httpRequest,
  onFreePorts,
  type ServiceProcess,
  startService,
  waitForHttp,
} from './harness.js';

/**
 * One real gateway process (`services/gateway/src/main.ts`) without the control side: its tenants'
 * snapshots are published straight to a fresh Kafka topic before it starts, so a test that is about the
 * replica itself (crashes, limits, shutdown) does not pay for a control plane and two projectors.
 */
export interface LoneGateway {
  readonly service: ServiceProcess;
  readonly url: string;
  readonly adminUrl: string;
  readonly port: number;
  readonly adminPort: number;
  /** Its GATEWAY_REDIS_KEY_PREFIX (shared by replicas started together). */
  readonly keyPrefix: string;
  /** A request for tenant host `<subdomain>.localhost` (a fresh connection unless `agent` is given). */
  request(
    subdomain: string,
    pathname: string,
    options?: { method?: string; headers?: Record<string, string>; agent?: http.Agent; timeoutMs?: number },
  ): Promise<HttpResponse>;
  /** Publishes tenants' changes (new versions, tombstones) to the replica's topic while it runs. */
  publish(messages: readonly SnapshotMessage[]): Promise<void>;
  /** Stops the process (if still running) and removes its topic and Redis keys. */
  close(): Promise<void>;
}

export const LONE_GATEWAY_PEPPER = 'lone-gateway-pepper-0123456789abcdefghijklmnop';

export async function startLoneGateway(options: {
  snapshots: readonly TenantSnapshot[];
  env?: Record<string, string>;
}): Promise<LoneGateway> {
  return (await startLoneGateways({ ...options, count: 1 }))[0]!;
}

/**
 * `count` replicas of the gateway on the same snapshots topic and Redis key prefix (so they share the
 * cache and rate limits like a deployment's replicas). Each close() stops its own process; the last one
 * also removes the topic and the Redis keys.
 */
export async function startLoneGateways({
  snapshots,
  env = {},
  count,
}: {
  snapshots: readonly TenantSnapshot[];
  env?: Record<string, string>;
  count: number;
}): Promise<LoneGateway[]> {
  const topic = uniqueTopic('lone-gateway');
  const keyPrefix = `ve-test-lone-${uniqueSuffix()}:`;
  const publish = async (messages: readonly SnapshotMessage[]) => {
    const bus = createKafkaSnapshotBus({
      brokers: TEST_INFRA.kafkaBrokers,
      clientId: `ve-test-${uniqueSuffix()}`,
      topic,
      partitions: 1,
      replicationFactor: 1,
      maxMessageBytes: 8 * 1024 * 1024, // the gateway's default SNAPSHOT_MAX_MESSAGE_BYTES
    });
    try {
      const result = await bus.publish([...messages]);
      if (result.failed.length > 0) throw new Error(`snapshots not published: ${result.failed[0]?.error}`);
    } finally {
      await bus.close();
    }
  };
  await publish(
    snapshots.map((snapshot) => ({
      kind: 'snapshot' as const,
      tenantId: snapshot.tenant_id,
      version: BigInt(snapshot.version),
      snapshot,
    })),
  );

  const cleanup = async () => {
    const admin = createTestKafka().admin();
    const redis = new Redis(TEST_INFRA.redisUrl, { maxRetriesPerRequest: 2 });
    await Promise.all([
      admin
        .connect()
        .then(() => admin.deleteTopics({ topics: [topic] }))
        .catch(() => {})
        .finally(() => admin.disconnect()),
      (async () => {
        let cursor = '0';
        do {
          const [next, keys] = await redis.scan(cursor, 'MATCH', `${keyPrefix}*`, 'COUNT', 500);
          if (keys.length > 0) await redis.unlink(...keys);
          cursor = next;
        } while (cursor !== '0');
      })()
        .catch(() => {})
        .finally(() => redis.disconnect()),
    ]);
  };
  let running = count;
  const replicaClosed = async () => {
    running--;
    if (running === 0) await cleanup();
  };
  const started: LoneGateway[] = [];
  try {
    for (let i = 0; i < count; i++)
      started.push(await startReplica(topic, keyPrefix, env, replicaClosed, publish));
  } catch (error) {
    // The replica that failed never counted itself closed, so these closes leave the cleanup to here.
    await Promise.all(started.map((replica) => replica.close()));
    await cleanup();
    throw error;
  }
  return started;
}

async function startReplica(
  topic: string,
  keyPrefix: string,
  env: Record<string, string>,
  replicaClosed: () => Promise<void>,
  publish: LoneGateway['publish'],
): Promise<LoneGateway> {
  const { service, port, adminPort } = await onFreePorts(2, async ([port, adminPort]) => {
    const service = startService(`lone gateway ${topic} :${port}`, ENTRY_POINTS.gateway, {
      REDIS_URL: TEST_INFRA.redisUrl,
      KAFKA_BROKERS: TEST_INFRA.kafkaBrokers.join(','),
      SNAPSHOT_BUS: 'kafka',
      SNAPSHOT_TOPIC: topic,
      SNAPSHOT_TOPIC_PARTITIONS: '1',
      ROLLOUT_KEY_PREFIX: `${keyPrefix}rollout:`,
      GATEWAY_REDIS_KEY_PREFIX: keyPrefix,
      API_KEY_PEPPER: LONE_GATEWAY_PEPPER,
      GATEWAY_PORT: String(port),
      GATEWAY_ADMIN_PORT: String(adminPort),
      GATEWAY_HOST: '127.0.0.1',
      GATEWAY_REPLICA_ID: `lone-${uniqueSuffix()}`,
      LOG_LEVEL: 'info',
      OTEL_ENABLED: 'false',
      // The tests' origins run on 127.0.0.1.
      ORIGIN_BLOCKED_CIDRS: ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK.join(','),
      // No load balancer in front to notice a drain: tests that are about draining set their own.
      GATEWAY_DRAIN_SECONDS: '0',
      ...env,
    });
    try {
      await waitForHttp(service, `http://127.0.0.1:${adminPort}/readyz`, { timeoutMs: 90_000 });
    } catch (error) {
      await service.stop();
      throw error;
    }
    return { service, port, adminPort };
  });
  const url = `http://127.0.0.1:${port}`;
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await service.stop();
    await replicaClosed();
  };
  return {
    service,
    url,
    adminUrl,
    port,
    adminPort,
    keyPrefix,
    request: (subdomain, pathname, { headers = {}, ...options } = {}) =>
      httpRequest(`${url}${pathname}`, {
        ...options,
        headers: { host: `${subdomain}.localhost`, ...headers },
      }),
    publish,
    close,
  };
}
