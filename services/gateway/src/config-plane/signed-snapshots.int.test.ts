import { generateKeyPairSync } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK } from '@vantageedge/shared/net/origin-address-policy';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { parseSettings } from '@vantageedge/shared/settings/load-settings';
import { type EncodedSnapshotRecord, encodeSnapshotMessage } from '@vantageedge/shared/snapshot-bus/codec';
import { createKafkaSnapshotBus } from '@vantageedge/shared/snapshot-bus/kafka-snapshot-bus';
import type { SnapshotBus } from '@vantageedge/shared/snapshot-bus/port';
import {
  createSnapshotSigner,
  createSnapshotVerifier,
  HEADER_SIGNATURE,
  keyIdOf,
  type SnapshotSigner,
} from '@vantageedge/shared/snapshot-bus/record-signature';
import { configPlaneSettings } from '@vantageedge/shared/snapshot-bus/settings';
import { snapshotMessage } from '@vantageedge/shared/snapshot-bus/testing';
import { TEST_INFRA, uniqueSuffix } from '@vantageedge/shared/testing/infrastructure';
import {
  createTestKafka,
  deleteTestTopics,
  produceWithNullHeaderValues,
  uniqueTopic,
} from '@vantageedge/shared/testing/kafka';
import type { Registry } from 'prom-client';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { gatewaySettings } from '../settings.js';
import { type GatewayReplica, startGatewayReplica } from '../start-gateway-replica.js';
import { startTestOrigin, type TestOrigin } from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * Replicas verifying the snapshot topic's records (SNAPSHOT_VERIFY_KEYS_FILE) on the real Kafka: a
 * principal allowed to write the topic that is not the projector cannot change what a tenant serves.
 */
const topics: string[] = [];
const closing: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const close of closing.splice(0).reverse()) await close().catch(() => undefined);
});
afterAll(() => deleteTestTopics(topics));

const MAX_MESSAGE_BYTES = 1024 * 1024;
const ORIGIN_ID = 'c3c3c3c3-0000-4000-8000-000000000001';

function kafkaBus(
  topic: string,
  keys: { signer?: SnapshotSigner; verifier?: ReturnType<typeof createSnapshotVerifier> } = {},
): SnapshotBus {
  const bus = createKafkaSnapshotBus({
    brokers: TEST_INFRA.kafkaBrokers,
    clientId: `ve-test-${uniqueSuffix()}`,
    topic,
    partitions: 1,
    replicationFactor: 1,
    maxMessageBytes: MAX_MESSAGE_BYTES,
    groupIdPrefix: 've-test-signed',
    ...keys,
  });
  closing.push(() => bus.close());
  return bus;
}

async function startReplica(bus: SnapshotBus): Promise<GatewayReplica & { registry: Registry }> {
  const config = parseSettings(
    { ...configPlaneSettings, ...gatewaySettings },
    {
      GATEWAY_PORT: '0',
      GATEWAY_ADMIN_PORT: '0',
      GATEWAY_HOST: '127.0.0.1',
      API_KEY_PEPPER: 'signed-pepper-0123456789abcdef0123456789ab',
      ORIGIN_BLOCKED_CIDRS: ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK.join(','),
      GATEWAY_ACCESS_LOG_SAMPLE_RATE: '0',
    },
  );
  const registry = createMetricsRegistry('gateway-signed');
  const replica = await startGatewayReplica({
    config,
    bus,
    registry,
    logger: createLogger({ service: 'gateway-signed', level: 'fatal' }),
  });
  closing.push(() => replica.close());
  return Object.assign(replica, { registry });
}

/** Which origin answers the tenant's host (its body names the origin), or the status when none does. */
function servedBy(port: number, host: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: '/api/who', headers: { host } });
    req.once('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString();
        resolve(
          res.statusCode === 200 ? (JSON.parse(body) as { origin: string }).origin : `${res.statusCode}`,
        );
      });
    });
    req.on('error', reject);
    req.end();
  });
}

async function origin(name: string): Promise<TestOrigin> {
  const started = await startTestOrigin(name);
  closing.push(() => started.close());
  return started;
}

function tenantAt(tenantId: string, subdomain: string, version: number, behind: TestOrigin) {
  return buildSnapshot({
    tenantId,
    version,
    subdomain,
    origins: [{ id: ORIGIN_ID, targets: [behind.url] }],
    routes: [{ origin_id: ORIGIN_ID, path_pattern: '/api/*' }],
  });
}

/** Writes records to the topic as any principal allowed to produce to it would. */
async function produceRaw(topic: string, records: EncodedSnapshotRecord[]): Promise<void> {
  const producer = createTestKafka().producer();
  await producer.connect();
  try {
    await producer.send({ topic, acks: -1, messages: records });
  } finally {
    await producer.disconnect();
  }
}

async function unverifiedCount(
  replica: GatewayReplica & { registry: { getSingleMetric(name: string): unknown } },
) {
  const metric = replica.registry.getSingleMetric('vantageedge_config_unverified_messages_total') as
    | { get(): Promise<{ values: Array<{ value: number; labels: Record<string, string> }> }> }
    | undefined;
  const values = (await metric?.get())?.values ?? [];
  return Object.fromEntries(values.map((entry) => [entry.labels.reason, entry.value]));
}

describe('a replica verifying snapshot signatures', () => {
  it('applies only records signed by an accepted key; forged values and tombstones leave the tenant as it was', async () => {
    const topic = uniqueTopic('signed');
    topics.push(topic);
    const projectorKey = generateKeyPairSync('ed25519');
    const nextKey = generateKeyPairSync('ed25519');
    const attackerKey = generateKeyPairSync('ed25519');
    const projector = kafkaBus(topic, { signer: createSnapshotSigner(projectorKey.privateKey) });
    const verifier = createSnapshotVerifier([projectorKey.publicKey, nextKey.publicKey]);
    const [good, evil, rotated] = await Promise.all([origin('good'), origin('evil'), origin('rotated')]);

    const tenantId = crypto.randomUUID();
    const subdomain = `signed${uniqueSuffix()}`;
    const host = `${subdomain}.localhost`;
    expect(
      (await projector.publish([snapshotMessage(tenantAt(tenantId, subdomain, 10, good))])).failed,
    ).toEqual([]);

    const replica = await startReplica(kafkaBus(topic, { verifier }));
    await replica.configPlane.ready;
    const port = replica.gateway.trafficPort;
    expect(await servedBy(port, host)).toBe('good');

    // A topic writer without the key: unsigned, signed by its own key, a signed record altered,
    // and a tombstone — each at a version above the tenant's.
    const forged = (version: number) =>
      encodeSnapshotMessage(snapshotMessage(tenantAt(tenantId, subdomain, version, evil)), MAX_MESSAGE_BYTES);
    const unsigned = forged(20);
    const ownKey = forged(21);
    createSnapshotSigner(attackerKey.privateKey).sign(ownKey);
    const altered = forged(22);
    const genuine = encodeSnapshotMessage(
      snapshotMessage(tenantAt(tenantId, subdomain, 22, good)),
      MAX_MESSAGE_BYTES,
    );
    createSnapshotSigner(projectorKey.privateKey).sign(genuine);
    altered.headers = {
      ...altered.headers,
      've-key-id': genuine.headers['ve-key-id']!,
      [HEADER_SIGNATURE]: genuine.headers[HEADER_SIGNATURE]!,
    };
    const tombstone = encodeSnapshotMessage({ kind: 'tombstone', tenantId, version: 23n }, MAX_MESSAGE_BYTES);
    await produceRaw(topic, [unsigned, ownKey, altered, tombstone]);

    await expect
      .poll(() => unverifiedCount(replica), { timeout: 20_000 })
      .toEqual({ missing: 2, unknown_key: 1, invalid: 1 });
    expect(await servedBy(port, host)).toBe('good');

    // Rotation: the next key's records are taken while the old one's still are.
    const nextProjector = kafkaBus(topic, { signer: createSnapshotSigner(nextKey.privateKey) });
    expect(
      (await nextProjector.publish([snapshotMessage(tenantAt(tenantId, subdomain, 30, rotated))])).failed,
    ).toEqual([]);
    await expect.poll(() => servedBy(port, host), { timeout: 20_000 }).toBe('rotated');

    // A replica starting afresh reads the forged records in its catch-up: the tenant is at its
    // newest signed version, not deleted and not the attacker's, however many forged ones follow it.
    await produceRaw(topic, [forged(40), forged(41), forged(42)]);
    const fresh = await startReplica(kafkaBus(topic, { verifier }));
    await fresh.configPlane.ready;
    expect(await servedBy(fresh.gateway.trafficPort, host)).toBe('rotated');
    expect(await unverifiedCount(fresh)).toEqual({ missing: 5, unknown_key: 1, invalid: 1 });
  }, 90_000);

  it('refuses a record with a header without a value and goes on reading the topic, live and at a start', async () => {
    const topic = uniqueTopic('signed-null-header');
    topics.push(topic);
    const projectorKey = generateKeyPairSync('ed25519');
    const projector = kafkaBus(topic, { signer: createSnapshotSigner(projectorKey.privateKey) });
    const verifier = createSnapshotVerifier([projectorKey.publicKey]);
    const [good, evil, next] = await Promise.all([origin('good'), origin('evil'), origin('next')]);
    const tenantId = crypto.randomUUID();
    const subdomain = `nullheader${uniqueSuffix()}`;
    const host = `${subdomain}.localhost`;
    expect(
      (await projector.publish([snapshotMessage(tenantAt(tenantId, subdomain, 10, good))])).failed,
    ).toEqual([]);
    const replica = await startReplica(kafkaBus(topic, { verifier }));
    await replica.configPlane.ready;
    expect(await servedBy(replica.gateway.trafficPort, host)).toBe('good');

    // Kafka's record format lets a header have no value (null); any topic writer can send one.
    const forged = encodeSnapshotMessage(
      snapshotMessage(tenantAt(tenantId, subdomain, 20, evil)),
      MAX_MESSAGE_BYTES,
    );
    await produceWithNullHeaderValues(topic, [
      { ...forged, headers: { ...forged.headers, [HEADER_SIGNATURE]: null, 've-key-id': null } },
    ]);
    expect(
      (await projector.publish([snapshotMessage(tenantAt(tenantId, subdomain, 30, next))])).failed,
    ).toEqual([]);

    await expect.poll(() => servedBy(replica.gateway.trafficPort, host), { timeout: 20_000 }).toBe('next');
    expect(await unverifiedCount(replica)).toEqual({ missing: 1, unknown_key: 0, invalid: 0 });
    const fresh = await startReplica(kafkaBus(topic, { verifier }));
    await expect.poll(() => fresh.configPlane.status().ready, { timeout: 20_000 }).toBe(true);
    expect(await servedBy(fresh.gateway.trafficPort, host)).toBe('next');
  }, 90_000);

  // Its verify keys lack the projector's (the old key removed before the projector signed with the new
  // one, another environment's key): ready with no tenant, a rolling deploy would replace every
  // replica that serves them.
  it('stays not ready, saying why, while no record on the topic is signed by a key it accepts', async () => {
    const topic = uniqueTopic('signed-no-accepted-key');
    topics.push(topic);
    const [oldKey, newKey] = [generateKeyPairSync('ed25519'), generateKeyPairSync('ed25519')];
    const [before, after] = await Promise.all([origin('before'), origin('after')]);
    const tenantId = crypto.randomUUID();
    const subdomain = `nokey${uniqueSuffix()}`;
    const oldProjector = kafkaBus(topic, { signer: createSnapshotSigner(oldKey.privateKey) });
    expect(
      (await oldProjector.publish([snapshotMessage(tenantAt(tenantId, subdomain, 10, before))])).failed,
    ).toEqual([]);

    const replica = await startReplica(
      kafkaBus(topic, { verifier: createSnapshotVerifier([newKey.publicKey]) }),
    );
    await expect.poll(() => replica.configPlane.status().caughtUp, { timeout: 20_000 }).toBe(true);
    expect(replica.configPlane.status()).toMatchObject({ ready: false, tenants: 0 });
    expect(replica.configPlane.status().lastError).toContain(keyIdOf(oldKey.publicKey));
    const readyz = await fetch(`http://127.0.0.1:${replica.gateway.adminPort}/readyz`);
    expect(readyz.status).toBe(503);
    expect(((await readyz.json()) as { reason: string }).reason).toMatch(/accepted key/);

    // The projector restarted with the new key publishes every tenant again under it.
    const newProjector = kafkaBus(topic, { signer: createSnapshotSigner(newKey.privateKey) });
    expect(
      (await newProjector.publish([snapshotMessage(tenantAt(tenantId, subdomain, 10, after))])).failed,
    ).toEqual([]);
    await replica.configPlane.ready;
    expect(await servedBy(replica.gateway.trafficPort, `${subdomain}.localhost`)).toBe('after');
  }, 90_000);
});
