import { randomUUID } from 'node:crypto';
import { buildSnapshot } from '@vantageedge/gateway/testing/snapshots';
import { TEST_INFRA, uniqueSuffix } from '@vantageedge/shared/testing/infrastructure';
import { deleteTestTopics, uniqueTopic } from '@vantageedge/shared/testing/kafka';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ENTRY_POINTS,
  onFreePorts,
  startOrigin,
  startService,
  stopAllServices,
  type TestOrigin,
} from './harness.js';
import { type LoneGateway, startLoneGateway } from './lone-gateway.js';

/**
 * A gateway replica that takes its configuration from an authenticated, encrypted Kafka: the local
 * broker's SASL_SSL listener (SCRAM-SHA-512 over TLS from its own CA, infra/kafka.sh). With the right
 * credentials it reads the snapshot topic and serves; with a wrong password it never becomes ready,
 * says why, and never prints the password.
 */
const { brokers, caFile, username, password } = TEST_INFRA.kafkaSaslSsl;
const SUBDOMAIN = 'kafka-sasl-ssl';

function kafkaOverSaslSsl(secret: string): Record<string, string> {
  return {
    KAFKA_BROKERS: brokers.join(','),
    KAFKA_SASL_MECHANISM: 'scram-sha-512',
    KAFKA_SASL_USERNAME: username,
    KAFKA_SASL_PASSWORD: secret,
    KAFKA_TLS_CA_FILE: caFile,
  };
}

let origin: TestOrigin;
let gateway: LoneGateway | undefined;
const topics: string[] = [];

beforeAll(async () => {
  origin = await startOrigin('sasl-ssl-origin');
});

afterAll(async () => {
  await gateway?.close();
  await stopAllServices();
  await origin?.close();
  await deleteTestTopics(topics);
});

describe('gateway on a SASL_SSL Kafka', () => {
  it('reads its tenants over SCRAM and TLS and serves them', async () => {
    const originId = randomUUID();
    const snapshot = buildSnapshot({
      subdomain: SUBDOMAIN,
      origins: [{ id: originId, targets: [origin.url] }],
      routes: [{ origin_id: originId, path_pattern: '/*' }],
    });
    gateway = await startLoneGateway({ snapshots: [snapshot], env: kafkaOverSaslSsl(password) });
    const response = await gateway.request(SUBDOMAIN, '/hello');
    expect(response.status).toBe(200);
    expect(JSON.parse(response.body)).toMatchObject({ origin: 'sasl-ssl-origin', path: '/hello' });
  });

  it('with a wrong password stays not ready, its log and /status naming the failed authentication, and no output, /status or /metrics showing the password', async () => {
    const wrongPassword = `wrong-${randomUUID()}`;
    const topic = uniqueTopic('sasl-ssl-wrong-password');
    topics.push(topic);
    const { service, adminPort } = await onFreePorts(2, async ([port, adminPort]) => ({
      adminPort,
      service: startService(`gateway with a wrong Kafka password :${port}`, ENTRY_POINTS.gateway, {
        ...kafkaOverSaslSsl(wrongPassword),
        REDIS_URL: TEST_INFRA.redisUrl,
        SNAPSHOT_BUS: 'kafka',
        SNAPSHOT_TOPIC: topic,
        SNAPSHOT_TOPIC_PARTITIONS: '1',
        ROLLOUT_KEY_PREFIX: `ve-test-sasl-${uniqueSuffix()}:rollout:`,
        API_KEY_PEPPER: 'kafka-sasl-ssl-pepper-0123456789abcdefghijklmnop',
        GATEWAY_PORT: String(port),
        GATEWAY_ADMIN_PORT: String(adminPort),
        GATEWAY_HOST: '127.0.0.1',
        GATEWAY_REPLICA_ID: `sasl-${uniqueSuffix()}`,
        LOG_LEVEL: 'info',
        OTEL_ENABLED: 'false',
      }),
    }));
    const line = await service.waitForLine('snapshot bus unreachable', 60_000);
    expect(line).toMatch(/SASL SCRAM SHA512 authentication failed.*invalid credentials/);
    const admin = `http://127.0.0.1:${adminPort}`;
    expect((await fetch(`${admin}/readyz`)).status).toBe(503);
    const status = await fetch(`${admin}/status`);
    expect(status.status).toBe(200);
    const statusBody = await status.text();
    expect(JSON.parse(statusBody).snapshots).toMatchObject({
      caught_up: false,
      last_error: expect.stringMatching(/authentication failed/),
    });
    const metrics = await (await fetch(`${admin}/metrics`)).text();
    await service.stop();
    for (const shown of [statusBody, metrics, service.output()]) expect(shown).not.toContain(wrongPassword);
  });
});
