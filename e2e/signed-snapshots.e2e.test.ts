import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { encodeSnapshotMessage } from '@vantageedge/shared/snapshot-bus/codec';
import { createTestKafka } from '@vantageedge/shared/testing/kafka';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GatewayReplica, startOrigin, stopAllServices, type TestOrigin, TestSystem } from './harness.js';

/**
 * The snapshot projector and the gateways as processes, configured as docs/deployment.md says: the
 * projector signs with SNAPSHOT_SIGNING_KEY_FILE, the gateways verify with SNAPSHOT_VERIFY_KEYS_FILE.
 * What the control plane changes reaches the gateways; what another writer of the topic produces does not.
 */
const SUBDOMAIN = 'signed';

let system: TestSystem;
let keysDir: string;
let replica: GatewayReplica;
let served: TestOrigin;
let forged: TestOrigin;

beforeAll(async () => {
  keysDir = await mkdtemp(path.join(os.tmpdir(), 've-e2e-signing-'));
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const signingKeyFile = path.join(keysDir, 'signing.pem');
  const verifyKeysFile = path.join(keysDir, 'verify.pem');
  await writeFile(signingKeyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  await writeFile(verifyKeysFile, publicKey.export({ type: 'spki', format: 'pem' }));
  system = await TestSystem.create({
    projectorEnv: { SNAPSHOT_SIGNING_KEY_FILE: signingKeyFile },
    gatewayEnv: { SNAPSHOT_VERIFY_KEYS_FILE: verifyKeysFile, GATEWAY_ACCESS_LOG_SAMPLE_RATE: '0' },
  });
  [served, forged] = await Promise.all([startOrigin('served'), startOrigin('forged')]);
  await system.startControlSide();
  [replica] = (await system.startGateways(1)) as [GatewayReplica];
}, 180_000);

afterAll(async () => {
  await system?.close();
  await Promise.all([served?.close(), forged?.close()]);
  await stopAllServices();
  if (keysDir) await rm(keysDir, { recursive: true, force: true });
});

describe('signed snapshots between processes', () => {
  it('serves what the control plane configured, and does not delete it for a tombstone another topic writer produced', async () => {
    const tenant = await system.admin('POST', '/api/v1/tenants', {
      body: { name: 'Signed Co', subdomain: SUBDOMAIN },
    });
    expect(tenant.status, tenant.text).toBe(201);
    const tenantId = tenant.body['id'] as string;
    const origin = await system.admin('POST', '/api/v1/origins', {
      body: { tenant_id: tenantId, name: served.name, url: served.url },
    });
    expect(origin.status, origin.text).toBe(201);
    const route = await system.admin('POST', '/api/v1/routes?wait_for_rollout=10s', {
      body: {
        tenant_id: tenantId,
        path_pattern: '/svc/*',
        origin_id: origin.body['id'],
        auth_mode: 'public',
      },
    });
    expect(route.status, route.text).toBe(201);
    const before = await replica.get(SUBDOMAIN, '/svc/x');
    expect(before.status).toBe(200);
    expect(before.headers['x-origin']).toBe('served');

    // A tombstone a topic writer without the key produced, at a version above the tenant's.
    const rollout = await system.admin('GET', `/api/v1/tenants/${tenantId}/rollout`);
    const version = BigInt(rollout.body['target_version'] as string) + 1000n;
    const topicWriter = createTestKafka().producer();
    await topicWriter.connect();
    try {
      const record = encodeSnapshotMessage({ kind: 'tombstone', tenantId, version }, 1024 * 1024);
      await topicWriter.send({ topic: system.topic, acks: -1, messages: [record] });
    } finally {
      await topicWriter.disconnect();
    }
    const refused = await replica.service.waitForLine('unsigned snapshot message refused', 20_000);
    expect(JSON.parse(refused)).toMatchObject({ tenant_id: tenantId });
    const after = await replica.get(SUBDOMAIN, '/svc/x');
    expect(after.status).toBe(200);
    expect(after.headers['x-origin']).toBe('served');
  }, 60_000);
});
