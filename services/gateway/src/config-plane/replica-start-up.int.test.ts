import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TenantSnapshot } from '@vantageedge/shared/domain/gateway-config';
import { ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK } from '@vantageedge/shared/net/origin-address-policy';
import { createLogger, silentLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { parseSettings } from '@vantageedge/shared/settings/load-settings';
import { createKafkaSnapshotBus } from '@vantageedge/shared/snapshot-bus/kafka-snapshot-bus';
import type { SnapshotBus } from '@vantageedge/shared/snapshot-bus/port';
import { configPlaneSettings } from '@vantageedge/shared/snapshot-bus/settings';
import { eventually, sampleSnapshot, snapshotMessage } from '@vantageedge/shared/snapshot-bus/testing';
import { TEST_INFRA, uniqueSuffix } from '@vantageedge/shared/testing/infrastructure';
import { deleteTestTopics, uniqueTopic } from '@vantageedge/shared/testing/kafka';
import { startTcpProxy, type TcpProxy } from '@vantageedge/shared/testing/tcp-proxy';
import { createTestCa, issueTestCertificate } from '@vantageedge/shared/testing/test-certificates';
import { tlsHandshake } from '@vantageedge/shared/testing/tls-clients';
import { keyRing } from '@vantageedge/shared/tls/private-key-envelope';
import { Registry } from 'prom-client';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { gatewaySettings } from '../settings.js';
import { type GatewayReplica, startGatewayReplica } from '../start-gateway-replica.js';
import { writeDefaultCertificateFiles } from '../testing/default-certificate-files.js';
import { startTestOrigin, type TestOrigin } from '../testing/gateway-harness.js';
import { buildSnapshot, snapshotCertificateOf } from '../testing/snapshots.js';
import { startConfigPlane } from './config-plane.js';
import { RecordingSink } from './testing.js';

/**
 * A replica started (a rolling restart, a scale-out) on the real Kafka, its connections to the broker
 * through a proxy that can keep it from reaching the broker.
 */
const topics: string[] = [];
const closing: Array<() => Promise<unknown>> = [];

afterEach(async () => {
  for (const close of closing.splice(0).reverse()) await close().catch(() => undefined);
});
afterAll(() => deleteTestTopics(topics));

/** group.min.session.timeout.ms, Kafka's default: the shortest session a broker grants. */
const SHORTEST_SESSION_MS = 6_000;

function kafkaBus(
  topic: string,
  proxy?: TcpProxy,
  partitions = 1,
  stallAfterMs?: number,
  sessionTimeoutMs?: number,
): SnapshotBus {
  const proxyPort = proxy ? Number(new URL(proxy.urlFor('kafka://127.0.0.1:1')).port) : undefined;
  const bus = createKafkaSnapshotBus({
    brokers: TEST_INFRA.kafkaBrokers,
    clientId: `ve-test-${uniqueSuffix()}`,
    topic,
    partitions,
    replicationFactor: 1,
    maxMessageBytes: 1024 * 1024,
    groupIdPrefix: 've-test-start-up',
    reconnectDelayMs: 200,
    ...(stallAfterMs === undefined ? {} : { stallAfterMs }),
    ...(sessionTimeoutMs === undefined ? {} : { sessionTimeoutMs }),
    ...(proxyPort === undefined
      ? {}
      : {
          socketFactory: ({ onConnect }) => net.connect({ host: '127.0.0.1', port: proxyPort }, onConnect),
        }),
  });
  closing.push(() => bus.close());
  return bus;
}

async function startReplica(bus: SnapshotBus, env: Record<string, string> = {}): Promise<GatewayReplica> {
  const config = parseSettings(
    { ...configPlaneSettings, ...gatewaySettings },
    {
      GATEWAY_PORT: '0',
      GATEWAY_ADMIN_PORT: '0',
      GATEWAY_HOST: '127.0.0.1',
      API_KEY_PEPPER: 'start-up-pepper-0123456789abcdef0123456789',
      ORIGIN_BLOCKED_CIDRS: ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK.join(','),
      GATEWAY_ACCESS_LOG_SAMPLE_RATE: '0',
      ...env,
    },
  );
  const replica = await startGatewayReplica({
    config,
    bus,
    registry: createMetricsRegistry('gateway-start-up'),
    logger: createLogger({ service: 'gateway-start-up', level: 'error' }),
  });
  closing.push(() => replica.close());
  return replica;
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function get(
  port: number,
  host: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, headers: { host, ...headers } });
    req.once('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, headers: res.headers, body: '' });
    });
    req.once('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString(),
        }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

const WEBSOCKET = {
  connection: 'Upgrade',
  upgrade: 'websocket',
  'sec-websocket-version': '13',
  'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
};

async function tenantBehind(origin: TestOrigin, subdomain: string) {
  return buildSnapshot({
    subdomain,
    origins: [{ id: 'a5a5a5a5-0000-4000-8000-000000000001', targets: [origin.url] }],
    routes: [{ origin_id: 'a5a5a5a5-0000-4000-8000-000000000001', path_pattern: '/api/*' }],
  });
}

describe('a replica starting before it has every tenant’s config', () => {
  // Regression test: the traffic listener answers from the first moment, and a host whose tenant the
  // replica had not read yet got 404 tenant_not_found (an outage blip on every rolling restart, and a
  // 404 a shared cache may keep) although only this replica did not know the tenant yet.
  it('answers a host it does not know yet 503 config_loading with Retry-After, then serves it', async () => {
    const topic = uniqueTopic('start-up');
    topics.push(topic);
    const origin = await startTestOrigin('start-up');
    closing.push(() => origin.close());
    const subdomain = `start${uniqueSuffix()}`;
    const snapshot = await tenantBehind(origin, subdomain);
    const publisher = kafkaBus(topic);
    expect((await publisher.publish([snapshotMessage(snapshot)])).failed).toEqual([]);

    const proxy = await startTcpProxy(`kafka://${TEST_INFRA.kafkaBrokers[0]}`);
    closing.push(() => proxy.close());
    proxy.refuseConnections(true);
    const replica = await startReplica(kafkaBus(topic, proxy));
    const port = replica.gateway.trafficPort;
    const host = `${subdomain}.localhost`;

    const readyz = await fetch(`http://127.0.0.1:${replica.gateway.adminPort}/readyz`);
    expect(readyz.status).toBe(503);
    const loading = await get(port, host, '/api/users');
    expect(loading.status).toBe(503);
    expect(loading.headers['retry-after']).toBe('1');
    expect(JSON.parse(loading.body)).toMatchObject({ error: { code: 'config_loading' } });
    const upgrade = await get(port, host, '/api/socket', WEBSOCKET);
    expect(upgrade.status).toBe(503);
    expect(upgrade.headers['retry-after']).toBe('1');
    expect(JSON.parse(upgrade.body)).toMatchObject({ error: { code: 'config_loading' } });

    proxy.refuseConnections(false);
    await eventually('ready', () => replica.configPlane.status().ready, 30_000);
    const served = await get(port, host, '/api/users');
    expect(served.status).toBe(200);
    expect(JSON.parse(served.body)).toMatchObject({ origin: 'start-up', url: '/api/users' });
    // Caught up, a host no tenant holds is unknown for good.
    const unknown = await get(port, `nobody${uniqueSuffix()}.localhost`, '/api/users');
    expect(unknown.status).toBe(404);
    expect(JSON.parse(unknown.body)).toMatchObject({ error: { code: 'tenant_not_found' } });
  }, 60_000);
  // A custom domain's TLS handshake arriving before its tenant's certificate was read got the default
  // certificate, which does not name the domain: every client refused the connection.
  it('holds a custom domain’s TLS handshake until it has the tenant’s certificate', async () => {
    const topic = uniqueTopic('start-up-tls');
    topics.push(topic);
    const origin = await startTestOrigin('start-up-tls');
    closing.push(() => origin.close());
    const kek = randomBytes(32).toString('base64');
    const files = await writeDefaultCertificateFiles('start-up-tls');
    closing.push(() => files.remove());
    const domain = `api-${uniqueSuffix()}.example.com`;
    const certificate = await issueTestCertificate(await createTestCa(), { dnsNames: [domain] });
    const tenantId = randomUUID();
    const snapshot = buildSnapshot({
      tenantId,
      subdomain: `tls${uniqueSuffix()}`,
      customDomains: [domain],
      origins: [{ id: tenantId, targets: [origin.url] }],
      routes: [{ origin_id: tenantId, path_pattern: '/api/*' }],
      certificates: [snapshotCertificateOf(keyRing(kek), tenantId, certificate, [domain])],
    });
    expect((await kafkaBus(topic).publish([snapshotMessage(snapshot)])).failed).toEqual([]);

    const proxy = await startTcpProxy(`kafka://${TEST_INFRA.kafkaBrokers[0]}`);
    closing.push(() => proxy.close());
    proxy.refuseConnections(true);
    const replica = await startReplica(kafkaBus(topic, proxy), {
      ...files.tlsListenerEnv,
      CERTIFICATE_ENCRYPTION_KEY: kek,
    });
    const handshake = tlsHandshake({ port: replica.gateway.tlsPort as number, servername: domain });
    await sleep(500);
    proxy.refuseConnections(false);
    expect((await handshake).fingerprint256).toBe(certificate.fingerprint256);
    expect(replica.configPlane.status().caughtUp).toBe(true);
  }, 60_000);

  // A replica ready on its snapshot file while Kafka is unreachable serves the file's tenants, and does
  // not know of a tenant created since the file was written: not 404 for that one either.
  it('serves its snapshot file’s tenants while Kafka is unreachable, and answers other hosts 503', async () => {
    const topic = uniqueTopic('start-up-file');
    topics.push(topic);
    const origin = await startTestOrigin('start-up-file');
    closing.push(() => origin.close());
    const dir = await mkdtemp(path.join(tmpdir(), 've-start-up-'));
    closing.push(() => rm(dir, { recursive: true, force: true }));
    const env = { CONFIG_SNAPSHOT_FILE: path.join(dir, 'snapshots') };
    const known = await tenantBehind(origin, `known${uniqueSuffix()}`);
    const publisher = kafkaBus(topic);
    expect((await publisher.publish([snapshotMessage(known)])).failed).toEqual([]);
    const first = await startReplica(kafkaBus(topic), env);
    await first.configPlane.ready;
    await first.close();
    const created = await tenantBehind(origin, `created${uniqueSuffix()}`);
    expect((await publisher.publish([snapshotMessage(created)])).failed).toEqual([]);

    const proxy = await startTcpProxy(`kafka://${TEST_INFRA.kafkaBrokers[0]}`);
    closing.push(() => proxy.close());
    proxy.refuseConnections(true);
    const replica = await startReplica(kafkaBus(topic, proxy), env);
    await replica.configPlane.ready;
    expect(replica.configPlane.status()).toMatchObject({
      degraded: true,
      warmStarted: true,
      caughtUp: false,
    });
    const port = replica.gateway.trafficPort;
    expect((await get(port, `${known.tenant.subdomain}.localhost`, '/api/x')).status).toBe(200);
    const notYet = await get(port, `${created.tenant.subdomain}.localhost`, '/api/x');
    expect(notYet.status).toBe(503);
    expect(JSON.parse(notYet.body)).toMatchObject({ error: { code: 'config_loading' } });

    proxy.refuseConnections(false);
    await eventually('caught up', () => replica.configPlane.status().caughtUp, 30_000);
    expect((await get(port, `${created.tenant.subdomain}.localhost`, '/api/x')).status).toBe(200);
  }, 60_000);
});

describe('replicas started, scaled out and cut off under a running topic', () => {
  it('every replica serves every tenant of a topic of several partitions; a deleted tenant stays deleted', async () => {
    const topic = uniqueTopic('scale-out');
    topics.push(topic);
    const origin = await startTestOrigin('scale-out');
    closing.push(() => origin.close());
    const publisher = kafkaBus(topic, undefined, 3);
    const live = await Promise.all(
      Array.from({ length: 12 }, (_, index) => tenantBehind(origin, `live${index}x${uniqueSuffix()}`)),
    );
    const deleted = await tenantBehind(origin, `gone${uniqueSuffix()}`);
    expect((await publisher.publish([...live, deleted].map(snapshotMessage))).failed).toEqual([]);
    expect(
      (await publisher.publish([{ kind: 'tombstone', tenantId: deleted.tenant_id, version: 2n }])).failed,
    ).toEqual([]);

    const replicas = await Promise.all([1, 2, 3].map(() => startReplica(kafkaBus(topic, undefined, 3))));
    await Promise.all(replicas.map((replica) => replica.configPlane.ready));
    for (const replica of replicas) {
      expect(replica.configPlane.status()).toMatchObject({ ready: true, tenants: live.length });
      for (const snapshot of live) {
        const answer = await get(
          replica.gateway.trafficPort,
          `${snapshot.tenant.subdomain}.localhost`,
          '/api/x',
        );
        expect(answer.status, snapshot.tenant.subdomain).toBe(200);
      }
      const gone = await get(replica.gateway.trafficPort, `${deleted.tenant.subdomain}.localhost`, '/api/x');
      expect(gone.status).toBe(404);
    }
  }, 90_000);

  it('a replica cut off from Kafka keeps serving, then takes what was published meanwhile', async () => {
    const topic = uniqueTopic('cut-off');
    topics.push(topic);
    const origin = await startTestOrigin('cut-off');
    closing.push(() => origin.close());
    const publisher = kafkaBus(topic);
    const first = await tenantBehind(origin, `first${uniqueSuffix()}`);
    expect((await publisher.publish([snapshotMessage(first)])).failed).toEqual([]);
    const proxy = await startTcpProxy(`kafka://${TEST_INFRA.kafkaBrokers[0]}`);
    closing.push(() => proxy.close());
    // Back, it rejoins its group once its cut-off membership has expired: the shortest session.
    const replica = await startReplica(kafkaBus(topic, proxy, 1, undefined, SHORTEST_SESSION_MS));
    await replica.configPlane.ready;
    const port = replica.gateway.trafficPort;

    proxy.refuseConnections(true);
    proxy.cutClientSide();
    await eventually('degraded', () => replica.configPlane.status().degraded, 30_000);
    expect((await get(port, `${first.tenant.subdomain}.localhost`, '/api/x')).status).toBe(200);
    const second = await tenantBehind(origin, `second${uniqueSuffix()}`);
    expect((await publisher.publish([snapshotMessage(second)])).failed).toEqual([]);
    expect(
      (await publisher.publish([{ kind: 'tombstone', tenantId: first.tenant_id, version: 2n }])).failed,
    ).toEqual([]);

    proxy.refuseConnections(false);
    await eventually(
      'caught up again',
      () => !replica.configPlane.status().degraded && replica.store.get(second.tenant_id) !== undefined,
      60_000,
    );
    await eventually('first removed', () => replica.store.get(first.tenant_id) === undefined, 30_000);
    expect((await get(port, `${second.tenant.subdomain}.localhost`, '/api/x')).status).toBe(200);
    expect((await get(port, `${first.tenant.subdomain}.localhost`, '/api/x')).status).toBe(404);
  }, 120_000);
});

/** A sink whose applies of the gated versions wait until each is opened: applies that take their time. */
class GatedSink extends RecordingSink {
  readonly #gates = new Map<bigint, { opened: Promise<void>; open: () => void }>();
  readonly waiting = new Set<bigint>();
  constructor(gatedVersions: readonly bigint[]) {
    super();
    for (const version of gatedVersions) {
      let open!: () => void;
      const opened = new Promise<void>((resolve) => {
        open = resolve;
      });
      this.#gates.set(version, { opened, open });
    }
  }
  async applyInSlices(snapshot: TenantSnapshot): Promise<boolean> {
    const gate = this.#gates.get(BigInt(snapshot.version));
    if (gate) {
      this.waiting.add(BigInt(snapshot.version));
      await gate.opened;
    }
    return this.apply(snapshot);
  }
  open(version: bigint): void {
    this.#gates.get(version)?.open();
  }
  openAll(): void {
    for (const gate of this.#gates.values()) gate.open();
  }
}

describe('a replica catching up with the topic', () => {
  // Regression test: the subscription took the time it spent handing the records it had read over
  // (seconds for thousands of tenants, or a few large ones) for Kafka not answering: after 3 s it
  // reported the bus unreachable, and a replica warm-started from its snapshot file then became ready
  // (degraded, "serving the snapshot file") halfway through its catch-up, with Kafka reachable: /readyz
  // 200 while tenants deleted meanwhile were still served from the file. Caught up, one large version
  // applied live for longer than that had the replica reported degraded (a false "Kafka unreachable").
  it('is neither degraded nor ready, warm-started, while it applies what it read', async () => {
    const topic = uniqueTopic('slow-catch-up');
    topics.push(topic);
    const dir = await mkdtemp(path.join(tmpdir(), 've-start-up-'));
    closing.push(() => rm(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'snapshots');
    const tenantId = randomUUID();
    const publisher = kafkaBus(topic);
    expect((await publisher.publish([snapshotMessage(sampleSnapshot(tenantId, 1n))])).failed).toEqual([]);
    const start = (sink: RecordingSink, stallAfterMs: number) => {
      const plane = startConfigPlane({
        bus: kafkaBus(topic, undefined, 1, stallAfterMs),
        sink,
        registry: new Registry(),
        logger: silentLogger,
        replicaId: `gw-${uniqueSuffix()}`,
        snapshotFile: file,
        snapshotFileDelayMs: 10,
      });
      closing.push(() => plane.close());
      return plane;
    };
    const first = start(new RecordingSink(), 3000);
    await first.ready;
    await first.close();
    expect((await publisher.publish([snapshotMessage(sampleSnapshot(tenantId, 2n))])).failed).toEqual([]);

    const stallAfterMs = 300;
    const sink = new GatedSink([2n, 3n]);
    const plane = start(sink, stallAfterMs);
    closing.push(async () => sink.openAll());
    await eventually('catch-up applying', () => sink.waiting.has(2n), 30_000);
    await sleep(stallAfterMs * 4);
    expect(plane.status()).toMatchObject({
      ready: false,
      degraded: false,
      warmStarted: true,
      lastError: null,
    });

    sink.open(2n);
    await plane.ready;
    expect(plane.status()).toMatchObject({ ready: true, caughtUp: true, degraded: false });
    expect(sink.appliedVersions().get(tenantId)).toBe(2n);

    expect((await publisher.publish([snapshotMessage(sampleSnapshot(tenantId, 3n))])).failed).toEqual([]);
    await eventually('live version applying', () => sink.waiting.has(3n), 30_000);
    await sleep(stallAfterMs * 4);
    expect(plane.status()).toMatchObject({ degraded: false, lastError: null });
    sink.open(3n);
    await eventually('live version applied', () => sink.appliedVersions().get(tenantId) === 3n);
    expect(plane.status()).toMatchObject({ degraded: false });
  }, 60_000);
});

describe('a replica whose Kafka goes dark while it applies its catch-up', () => {
  // Regression test: the catch-up heartbeats the group after each tenant it applies, and a failed
  // heartbeat was ignored and tried again at the next tenant: with the broker gone silent each tenant
  // waited out a request timeout (5 s), so a replica warm-started from its snapshot file stayed neither
  // ready nor degraded for minutes (the apply is not counted as Kafka's silence), although every record
  // was read already.
  it('finishes applying what it read and becomes ready', async () => {
    const topic = uniqueTopic('dark-catch-up');
    topics.push(topic);
    const dir = await mkdtemp(path.join(tmpdir(), 've-start-up-'));
    closing.push(() => rm(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'snapshots');
    const first = randomUUID();
    const publisher = kafkaBus(topic);
    expect((await publisher.publish([snapshotMessage(sampleSnapshot(first, 1n))])).failed).toEqual([]);
    const start = (bus: SnapshotBus, sink: RecordingSink) => {
      const plane = startConfigPlane({
        bus,
        sink,
        registry: new Registry(),
        logger: silentLogger,
        replicaId: `gw-${uniqueSuffix()}`,
        snapshotFile: file,
        snapshotFileDelayMs: 10,
      });
      closing.push(() => plane.close());
      return plane;
    };
    const warm = start(kafkaBus(topic), new RecordingSink());
    await warm.ready;
    await warm.close();
    const others = Array.from({ length: 8 }, () => randomUUID());
    expect(
      (
        await publisher.publish([
          snapshotMessage(sampleSnapshot(first, 2n)),
          ...others.map((tenantId) => snapshotMessage(sampleSnapshot(tenantId, 1n))),
        ])
      ).failed,
    ).toEqual([]);

    const proxy = await startTcpProxy(`kafka://${TEST_INFRA.kafkaBrokers[0]}`);
    closing.push(() => proxy.close());
    const sink = new GatedSink([2n]);
    closing.push(async () => sink.openAll());
    const plane = start(kafkaBus(topic, proxy, 1, 300), sink);
    await eventually('catch-up applying', () => sink.waiting.has(2n), 30_000);
    proxy.stall(true);
    closing.push(async () => proxy.stall(false));
    // Longer than the group's heartbeat interval: the next tenant applied heartbeats.
    await sleep(1500);
    sink.open(2n);

    await eventually('ready', () => plane.status().ready, 15_000);
    expect(plane.status()).toMatchObject({ ready: true, caughtUp: true, tenants: others.length + 1 });
  }, 90_000);
});
