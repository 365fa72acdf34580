import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK } from '@vantageedge/shared/net/origin-address-policy';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { parseSettings } from '@vantageedge/shared/settings/load-settings';
import {
  createKafkaSnapshotBus,
  type KafkaSnapshotBusOptions,
} from '@vantageedge/shared/snapshot-bus/kafka-snapshot-bus';
import type { SnapshotBus } from '@vantageedge/shared/snapshot-bus/port';
import { configPlaneSettings } from '@vantageedge/shared/snapshot-bus/settings';
import { TEST_INFRA, uniqueSuffix } from '@vantageedge/shared/testing/infrastructure';
import { deleteTestTopics, uniqueTopic } from '@vantageedge/shared/testing/kafka';
import { startTcpProxy, type TcpProxy } from '@vantageedge/shared/testing/tcp-proxy';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { gatewaySettings } from '../settings.js';
import { type GatewayReplica, startGatewayReplica } from '../start-gateway-replica.js';
import { startTestOrigin, type TestOrigin } from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * A replica whose Kafka broker accepts its connections and stops answering (a stalled link, a broker
 * frozen by its disk): the replica keeps serving its last config and stays ready, and its admin port
 * says the snapshot bus is unreachable; once Kafka answers again, what was published meanwhile is applied.
 */
const topic = uniqueTopic('stalled-gateway-bus');
afterAll(() => deleteTestTopics([topic]));

function busOptions(extra: Partial<KafkaSnapshotBusOptions> = {}): KafkaSnapshotBusOptions {
  return {
    brokers: TEST_INFRA.kafkaBrokers,
    clientId: `ve-test-${randomUUID()}`,
    topic,
    partitions: 1,
    replicationFactor: 1,
    maxMessageBytes: 1_000_000,
    groupIdPrefix: 've-test-stalled-gateway',
    ...extra,
  };
}

interface AdminAnswer {
  status: number;
  body: Record<string, unknown>;
}

async function admin(replica: GatewayReplica, path: string): Promise<AdminAnswer> {
  const answer = await fetch(`http://127.0.0.1:${replica.gateway.adminPort}${path}`);
  return { status: answer.status, body: (await answer.json()) as Record<string, unknown> };
}

describe('a replica whose Kafka broker stalls', () => {
  let proxy: TcpProxy;
  let publisher: SnapshotBus;
  const buses: SnapshotBus[] = [];
  const replicas: GatewayReplica[] = [];
  let snapshotDir: string | undefined;
  let origin: TestOrigin;
  let replica: GatewayReplica;
  const subdomain = `stalled${uniqueSuffix()}`;
  const tenantId = randomUUID();
  const snapshotAt = (version: number, path: string) =>
    buildSnapshot({
      tenantId,
      version,
      subdomain,
      origins: [{ id: '00000000-0000-4000-8000-000000000001', targets: [origin.url] }],
      routes: [{ origin_id: '00000000-0000-4000-8000-000000000001', path_pattern: path }],
    });
  const publish = (version: number, path: string) =>
    publisher.publish([
      { kind: 'snapshot', tenantId, version: BigInt(version), snapshot: snapshotAt(version, path) },
    ]);
  /** The status a tenant's request for `path` is answered with (fetch cannot set Host). */
  const statusOf = (target: string, on: GatewayReplica = replica) =>
    new Promise<number>((resolve, reject) => {
      const host = `${subdomain}.localhost`;
      const req = httpRequest({
        port: on.gateway.trafficPort,
        host: '127.0.0.1',
        path: target,
        headers: { host },
      });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });

  /** A replica whose consumer's every connection goes through the proxy. */
  const startReplica = async (env: Record<string, string> = {}): Promise<GatewayReplica> => {
    const port = Number(new URL(proxy.urlFor('kafka://127.0.0.1:1')).port);
    const replicaBus = createKafkaSnapshotBus(
      busOptions({ socketFactory: ({ onConnect }) => net.connect({ host: '127.0.0.1', port }, onConnect) }),
    );
    buses.push(replicaBus);
    const suffix = uniqueSuffix();
    const config = parseSettings(
      { ...configPlaneSettings, ...gatewaySettings },
      {
        GATEWAY_PORT: '0',
        GATEWAY_ADMIN_PORT: '0',
        GATEWAY_HOST: '127.0.0.1',
        API_KEY_PEPPER: 'stalled-bus-pepper-0123456789abcdef0123456789',
        GATEWAY_REDIS_KEY_PREFIX: `ve-test-stalled-bus-${suffix}:`,
        ROLLOUT_KEY_PREFIX: `ve-test-stalled-bus-${suffix}:rollout:`,
        ORIGIN_BLOCKED_CIDRS: ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK.join(','),
        ...env,
      },
    );
    const started = await startGatewayReplica({
      config,
      bus: replicaBus,
      registry: createMetricsRegistry('gateway-stalled-bus'),
      logger: createLogger({ service: 'gateway-stalled-bus', level: 'error' }),
    });
    replicas.push(started);
    return started;
  };

  beforeAll(async () => {
    origin = await startTestOrigin('stalled-bus-origin');
    snapshotDir = await mkdtemp(path.join(tmpdir(), 've-stalled-bus-'));
    publisher = createKafkaSnapshotBus(busOptions());
    await publish(1, '/v1/*');
    proxy = await startTcpProxy(`kafka://${TEST_INFRA.kafkaBrokers[0]}`);
    replica = await startReplica({
      CONFIG_SNAPSHOT_FILE: path.join(snapshotDir, 'snapshots'),
      CONFIG_SNAPSHOT_FILE_INTERVAL_SECONDS: '1',
    });
    await replica.configPlane.ready;
  }, 60_000);

  afterAll(async () => {
    proxy?.stall(false);
    await Promise.all(replicas.map((started) => started.close()));
    await Promise.all(buses.map((replicaBus) => replicaBus.close().catch(() => {})));
    if (snapshotDir) await rm(snapshotDir, { recursive: true, force: true });
    await publisher?.close();
    await proxy?.close();
    await origin?.close();
  });

  it('caught up: /status says the snapshots are caught up and the bus reachable', async () => {
    expect(await statusOf('/v1/a')).toBe(200);
    const status = await admin(replica, '/status');
    expect(status.body['snapshots']).toMatchObject({ caught_up: true, degraded: false });
  });

  it('while it stalls: keeps serving and stays ready, and /readyz and /status say the bus is unreachable', async () => {
    proxy.stall(true);
    await publish(2, '/v2/*');
    await vi.waitFor(
      async () => {
        const status = await admin(replica, '/status');
        expect(status.body['snapshots']).toMatchObject({ degraded: true });
      },
      { timeout: 20_000, interval: 200 },
    );
    const ready = await admin(replica, '/readyz');
    expect(ready.status).toBe(200);
    expect(String(ready.body['reason'])).toMatch(/snapshot bus unreachable/);
    const status = await admin(replica, '/status');
    expect((status.body['snapshots'] as Record<string, unknown>)['last_error']).toEqual(expect.any(String));
    // The last config is served: version 1's route, not version 2's.
    expect(await statusOf('/v1/a')).toBe(200);
    expect(await statusOf('/v2/a')).toBe(404);
  }, 30_000);

  it('once Kafka answers again: applies what was published meanwhile, and says so', async () => {
    proxy.stall(false);
    await vi.waitFor(async () => expect(await statusOf('/v2/a')).toBe(200), {
      timeout: 30_000,
      interval: 200,
    });
    await vi.waitFor(
      async () =>
        expect((await admin(replica, '/status')).body['snapshots']).toMatchObject({ degraded: false }),
      { timeout: 10_000, interval: 200 },
    );
    const ready = await admin(replica, '/readyz');
    expect(ready).toEqual({ status: 200, body: { status: 'ready' } });
    const tenant = ((await admin(replica, '/status')).body['tenants'] as Array<Record<string, unknown>>).find(
      (entry) => entry['tenant_id'] === tenantId,
    );
    expect(tenant?.['version']).toBe('2');
  }, 45_000);

  it('a replica starting while Kafka stalls serves its snapshot file and is ready within 10 s, saying it is degraded', async () => {
    // The first replica's file holds version 2 (written within its 1 s interval).
    await vi.waitFor(
      async () => {
        const files = await readdir(path.join(snapshotDir!, 'snapshots'));
        const texts = await Promise.all(
          files.map((file) => readFile(path.join(snapshotDir!, 'snapshots', file), 'utf8').catch(() => '')),
        );
        expect(texts.some((text) => text.includes('"version":"2"'))).toBe(true);
      },
      { timeout: 10_000, interval: 100 },
    );
    proxy.stall(true);
    const startedAt = Date.now();
    const second = await startReplica({ CONFIG_SNAPSHOT_FILE: path.join(snapshotDir!, 'snapshots') });
    let readyAfterMs: number | undefined;
    void second.configPlane.ready.then(() => {
      readyAfterMs = Date.now() - startedAt;
    });
    await vi.waitFor(() => expect(readyAfterMs).toBeDefined(), { timeout: 60_000, interval: 200 });
    expect(readyAfterMs).toBeLessThan(10_000);
    expect(await statusOf('/v2/a', second)).toBe(200);
    expect((await admin(second, '/status')).body['snapshots']).toMatchObject({ degraded: true });
    proxy.stall(false);
  }, 90_000);
});
