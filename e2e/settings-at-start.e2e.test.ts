import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ENTRY_POINTS, eventually, freePort, startService, stopAllServices } from './harness.js';

/**
 * What an operator sees when a setting is wrong: each service, started as a process, stops at once
 * with exit code 1 and ONE stderr line naming the variable, never a stack trace, never a start that
 * runs on and fails later. The infrastructure addresses lead nowhere, so nothing here reaches the
 * shared servers whether a service stops or not.
 */
const SERVICES = {
  'control-plane': ENTRY_POINTS.controlPlane,
  'read-model-projector': ENTRY_POINTS.readModels,
  'snapshot-projector': ENTRY_POINTS.snapshots,
  gateway: ENTRY_POINTS.gateway,
} as const;
type Service = keyof typeof SERVICES;

const clerkJwtKey = generateKeyPairSync('rsa', { modulusLength: 2048 })
  .publicKey.export({ type: 'spki', format: 'pem' })
  .toString();

const NOWHERE: Record<string, string> = {
  DATABASE_URL: 'postgres://nobody:nothing@127.0.0.1:1/none',
  REDIS_URL: 'redis://127.0.0.1:1',
  KAFKA_BROKERS: '127.0.0.1:1',
  API_KEY_PEPPER: 'settings-at-start-pepper-0123456789abcdef',
  CLERK_JWT_KEY: clerkJwtKey,
  CLERK_ISSUER: 'https://clerk.example.com',
  GATEWAY_PORT: '0',
  GATEWAY_ADMIN_PORT: '0',
  CONTROL_PLANE_PORT: '0',
  CONTROL_PLANE_HOST: '127.0.0.1',
  CONTROL_PLANE_METRICS_PORT: '0',
  SNAPSHOT_PROJECTOR_METRICS_PORT: '0',
  READ_MODEL_PROJECTOR_METRICS_PORT: '0',
  OTEL_ENABLED: 'false',
  LOG_LEVEL: 'error',
};

/** Starts `service` with `env` over NOWHERE; its exit code and stderr once it has stopped. */
async function refusedStart(
  service: Service,
  env: Record<string, string>,
): Promise<{ code: number | null; stderr: string }> {
  const process = startService(service, SERVICES[service], { ...NOWHERE, ...env });
  try {
    await eventually(`${service} stops at start`, async () => process.exited(), { timeoutMs: 20_000 });
  } catch {
    throw new Error(`${service} kept running with ${JSON.stringify(env)}\n${process.tail()}`);
  }
  return { code: process.child.exitCode, stderr: process.stderr() };
}

async function expectOneLineNaming(service: Service, env: Record<string, string>, setting: string) {
  const { code, stderr } = await refusedStart(service, env);
  expect(code, stderr).toBe(1);
  expect(stderr.trimEnd().split('\n'), stderr).toEqual([
    expect.stringMatching(new RegExp(`^${service}: invalid configuration: ${setting} \\S`)),
  ]);
}

/** One stderr line naming `setting`, exit 1, and no planted password in what the service wrote. */
async function expectNamedWithoutPassword(service: Service, env: Record<string, string>, setting: string) {
  const { code, stderr } = await refusedStart(service, env);
  expect(code, stderr).toBe(1);
  expect(stderr.trimEnd().split('\n'), stderr).toEqual([
    expect.stringMatching(new RegExp(`^${service}: invalid configuration: ${setting} \\S`)),
  ]);
  expect(stderr).not.toMatch(/planted-\w+-password/);
}

afterAll(() => stopAllServices());

// Each case is a process of its own that stops at once (its start-up is all the time it takes, CPU
// loading its modules): a few start at the same time.
describe.concurrent('a service given a bad setting stops at start with one line naming it', () => {
  it.each(['control-plane', 'read-model-projector', 'snapshot-projector'] as const)(
    '%s: EVENT_STORE=eventstoredb without EVENTSTOREDB_URL',
    async (service) => {
      await expectOneLineNaming(service, { EVENT_STORE: 'eventstoredb' }, 'EVENTSTOREDB_URL');
    },
  );

  // The in-memory event store and snapshot bus are shared only inside one process (make dev): a service of
  // its own would answer commands no projector sees, or publish snapshots no gateway reads, and say nothing.
  it.each(['control-plane', 'read-model-projector', 'snapshot-projector'] as const)(
    '%s: EVENT_STORE=memory',
    async (service) => {
      await expectOneLineNaming(service, { EVENT_STORE: 'memory' }, 'EVENT_STORE');
    },
  );

  it.each(['snapshot-projector', 'gateway'] as const)('%s: SNAPSHOT_BUS=memory', async (service) => {
    await expectOneLineNaming(service, { SNAPSHOT_BUS: 'memory' }, 'SNAPSHOT_BUS');
  });

  it.each(['snapshot-projector', 'gateway'] as const)(
    '%s: a Kafka SASL mechanism without its password, and a Kafka CA file that is not there',
    async (service) => {
      await expectOneLineNaming(
        service,
        { KAFKA_SASL_MECHANISM: 'scram-sha-512', KAFKA_SASL_USERNAME: 'gateway' },
        'KAFKA_SASL_PASSWORD',
      );
      await expectOneLineNaming(
        service,
        { KAFKA_TLS_CA_FILE: '/nonexistent/vantageedge/kafka-ca.pem' },
        'KAFKA_TLS_CA_FILE',
      );
    },
  );

  it('snapshot-projector: a signing key file that is not there', async () => {
    await expectOneLineNaming(
      'snapshot-projector',
      { SNAPSHOT_SIGNING_KEY_FILE: '/nonexistent/vantageedge/snapshot-signing.pem' },
      'SNAPSHOT_SIGNING_KEY_FILE',
    );
  });

  // A replica needs the public keys only: a private key there could sign any tenant's configuration.
  it('gateway: the signing (private) key given as the keys to verify with', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 've-settings-at-start-'));
    const file = path.join(dir, 'verify.pem');
    writeFileSync(file, generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }));
    try {
      await expectOneLineNaming('gateway', { SNAPSHOT_VERIFY_KEYS_FILE: file }, 'SNAPSHOT_VERIFY_KEYS_FILE');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('control plane: its metrics listener on the admin API port', async () => {
    const port = String(await freePort());
    await expectOneLineNaming(
      'control-plane',
      { CONTROL_PLANE_PORT: port, CONTROL_PLANE_METRICS_PORT: port },
      'CONTROL_PLANE_METRICS_PORT',
    );
  });

  it('gateway: its admin listener on the traffic port', async () => {
    const port = String(await freePort());
    await expectOneLineNaming(
      'gateway',
      { GATEWAY_PORT: port, GATEWAY_ADMIN_PORT: port },
      'GATEWAY_ADMIN_PORT',
    );
  });

  it('gateway: a TLS key without its certificate', async () => {
    await expectOneLineNaming('gateway', { GATEWAY_TLS_KEY_FILE: '/etc/hostname' }, 'GATEWAY_TLS_CERT_FILE');
  });

  it('gateway: a TLS certificate file that is not there', async () => {
    await expectOneLineNaming(
      'gateway',
      {
        GATEWAY_TLS_PORT: '0',
        GATEWAY_TLS_CERT_FILE: '/nonexistent/vantageedge/cert.pem',
        GATEWAY_TLS_KEY_FILE: '/nonexistent/vantageedge/key.pem',
      },
      'GATEWAY_TLS_CERT_FILE',
    );
  });

  it.each([
    ['gateway', 'KAFKA_BROKERS', 'kafka.internal'],
    ['snapshot-projector', 'KAFKA_BROKERS', 'kafka.internal:9092,:9092'],
    // kafkajs cannot reach an IPv6 literal (it splits the address at its first colon).
    ['gateway', 'KAFKA_BROKERS', '[::1]:59092'],
    ['snapshot-projector', 'KAFKA_BROKERS', 'kafka.internal:9092,[fd00::2]:9092'],
    ['gateway', 'REDIS_CLUSTER_NODES', 'redis-a:6379,redis-b:99999'],
    ['gateway', 'GATEWAY_CACHE_REDIS_CLUSTER_NODES', 'cache-a:70000'],
    ['control-plane', 'GATEWAY_CACHE_REDIS_CLUSTER_NODES', 'cache-a:0'],
  ] as const)('%s: %s=%s (not a host:port the client can reach)', async (service, setting, value) => {
    await expectOneLineNaming(service, { [setting]: value }, setting);
  });

  it.each([
    ['gateway', 'KAFKA_BROKERS', 'kafka-user:planted-broker-password@kafka.internal:9092'],
    // A comma in the password splits the list there: its first part is no address, and no less secret.
    ['gateway', 'KAFKA_BROKERS', 'kafka-user:planted-broker-password,x@kafka.internal:9092'],
    ['snapshot-projector', 'KAFKA_BROKERS', 'kafka.internal:9092,user:planted-broker-password@kafka-b:9092'],
    ['gateway', 'REDIS_CLUSTER_NODES', 'redis://:planted-redis-password@redis-a:6379'],
    ['control-plane', 'GATEWAY_CACHE_REDIS_CLUSTER_NODES', 'admin:planted-redis-password@cache-a:6379'],
  ] as const)('%s: %s written with credentials is named without them', async (service, setting, value) => {
    await expectNamedWithoutPassword(service, { [setting]: value }, setting);
  });

  it.each(['gateway', 'control-plane', 'read-model-projector'] as const)(
    '%s: a Redis CA file that is not there, its URL’s password not shown',
    async (service) => {
      await expectNamedWithoutPassword(
        service,
        {
          REDIS_URL: 'rediss://ve:planted-redis-password@127.0.0.1:1',
          REDIS_TLS_CA_FILE: '/nonexistent/vantageedge/redis-ca.pem',
        },
        'REDIS_TLS_CA_FILE',
      );
    },
  );

  it.each(['control-plane', 'read-model-projector', 'snapshot-projector'] as const)(
    '%s: a DATABASE_URL whose sslrootcert is not there, its password not shown',
    async (service) => {
      await expectNamedWithoutPassword(
        service,
        {
          DATABASE_URL:
            'postgres://ve:planted-db-password@127.0.0.1:1/none?sslmode=verify-full&sslrootcert=/nonexistent/vantageedge/pg-ca.pem',
        },
        'DATABASE_URL',
      );
    },
  );

  it.each([
    ['control-plane', 'esdb://admin:planted-esdb-password@127.0.0.1:2113?tls=maybe'],
    ['read-model-projector', 'esdb://admin:planted-esdb-password@[127.0.0.1:2113'],
    ['snapshot-projector', 'esdb://admin:planted-esdb-password@127.0.0.1:2113?nodePreference=nearest'],
    // An option the client does not know: it would ignore it, after printing the whole string.
    ['control-plane', 'esdb://admin:planted-esdb-password@127.0.0.1:2113?tls=false&tlsverify=false'],
  ] as const)(
    '%s: an EVENTSTOREDB_URL its client cannot read, its password not shown',
    async (service, url) => {
      await expectNamedWithoutPassword(
        service,
        { EVENT_STORE: 'eventstoredb', EVENTSTOREDB_URL: url },
        'EVENTSTOREDB_URL',
      );
    },
  );
});

describe('a service whose DATABASE_URL does not verify the server warns at start', () => {
  it.each(['control-plane', 'read-model-projector', 'snapshot-projector'] as const)(
    '%s: sslmode=no-verify, named without the password',
    async (service) => {
      const started = startService(service, SERVICES[service], {
        ...NOWHERE,
        LOG_LEVEL: 'warn',
        DATABASE_URL: 'postgres://ve:planted-db-password@127.0.0.1:1/none?sslmode=no-verify',
      });
      try {
        const line = await started.waitForLine("DATABASE_URL's sslmode=no-verify", 20_000);
        expect(line).toMatch(/"level":"warn"/);
        expect(line).not.toMatch(/planted-db-password/);
      } finally {
        await started.stop();
      }
    },
  );
});
