import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK } from '@vantageedge/shared/net/origin-address-policy';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { parseSettings } from '@vantageedge/shared/settings/load-settings';
import { createKafkaSnapshotBus } from '@vantageedge/shared/snapshot-bus/kafka-snapshot-bus';
import type { SnapshotBus } from '@vantageedge/shared/snapshot-bus/port';
import { configPlaneSettings } from '@vantageedge/shared/snapshot-bus/settings';
import { uniqueSuffix } from '@vantageedge/shared/testing/infrastructure';
import { uniqueTopic } from '@vantageedge/shared/testing/kafka';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatewaySettings } from '../settings.js';
import { type GatewayReplica, startGatewayReplica } from '../start-gateway-replica.js';

/**
 * The probes stay open without the admin token: what /readyz says of a replica that cannot reach its
 * snapshot bus names no broker (nor any other detail of the error), which only /status shows.
 */
async function unusedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

interface AdminAnswer {
  status: number;
  body: Record<string, unknown>;
}

async function admin(replica: GatewayReplica, path: string, token?: string): Promise<AdminAnswer> {
  const answer = await fetch(`http://127.0.0.1:${replica.gateway.adminPort}${path}`, {
    headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
  });
  return { status: answer.status, body: (await answer.json()) as Record<string, unknown> };
}

describe('a replica that cannot reach its snapshot bus at start', () => {
  const token = `admin-token-${randomUUID()}`;
  let broker: string;
  let bus: SnapshotBus;
  let replica: GatewayReplica;

  beforeAll(async () => {
    broker = `127.0.0.1:${await unusedPort()}`;
    bus = createKafkaSnapshotBus({
      brokers: [broker],
      clientId: `ve-test-${randomUUID()}`,
      topic: uniqueTopic('unreachable-bus-readyz'),
      partitions: 1,
      replicationFactor: 1,
      maxMessageBytes: 1_000_000,
      groupIdPrefix: 've-test-unreachable-bus-readyz',
    });
    const suffix = uniqueSuffix();
    const config = parseSettings(
      { ...configPlaneSettings, ...gatewaySettings },
      {
        GATEWAY_PORT: '0',
        GATEWAY_ADMIN_PORT: '0',
        GATEWAY_HOST: '127.0.0.1',
        GATEWAY_ADMIN_TOKEN: token,
        API_KEY_PEPPER: 'unreachable-bus-pepper-0123456789abcdef0123456789',
        GATEWAY_REDIS_KEY_PREFIX: `ve-test-unreachable-bus-${suffix}:`,
        ROLLOUT_KEY_PREFIX: `ve-test-unreachable-bus-${suffix}:rollout:`,
        ORIGIN_BLOCKED_CIDRS: ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK.join(','),
      },
    );
    replica = await startGatewayReplica({
      config,
      bus,
      registry: createMetricsRegistry('gateway-unreachable-bus'),
      logger: createLogger({ service: 'gateway-unreachable-bus', level: 'error' }),
    });
  }, 60_000);

  afterAll(async () => {
    await replica?.close();
    await bus?.close().catch(() => {});
  });

  it('answers /readyz 503 without naming the broker; /status, with the token, has the error', async () => {
    // Until the bus reports the failed connection, /readyz has no error to show.
    for (let i = 0; i < 400 && replica.configPlane.status().lastError === null; i++) {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    expect(replica.configPlane.status().lastError).not.toBeNull();
    const ready = await admin(replica, '/readyz');
    expect(ready.status).toBe(503);
    expect(String(ready.body['reason'])).not.toContain(broker.split(':')[1]);
    expect(ready.body).toEqual({
      status: 'not_ready',
      reason: 'snapshot bus unreachable; snapshots not caught up',
    });
    const status = await admin(replica, '/status', token);
    expect(status.status).toBe(200);
    expect(status.body['snapshots']).toMatchObject({ caught_up: false, degraded: true });
    expect(String((status.body['snapshots'] as Record<string, unknown>)['last_error'])).toContain(broker);
  }, 30_000);
});
