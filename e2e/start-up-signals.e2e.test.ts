import net from 'node:net';
import { TEST_INFRA } from '@vantageedge/shared/testing/infrastructure';
import { uniqueTopic } from '@vantageedge/shared/testing/kafka';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ENTRY_POINTS,
  eventually,
  freePort,
  type ServiceProcess,
  startService,
  stopAllServices,
} from './harness.js';

/**
 * SIGTERM while a service is still starting: PostgreSQL accepts its connections and never answers (a
 * database still recovering, a proxy in front of one that is down). The process stops at once and
 * exits 0, as once started. Regression test: a projector waited for the connection it was opening to
 * time out (POSTGRES_STATEMENT_DEADLINE_MS, 45 s) and was cut only by its shutdown deadline
 * (PROJECTOR_SHUTDOWN_TIMEOUT_SECONDS); in a container, after the orchestrator's grace period, by SIGKILL.
 */
let silentPostgres: net.Server;
const held: net.Socket[] = [];
let connections = 0;
let databaseUrl: string;

beforeAll(async () => {
  silentPostgres = net.createServer((socket) => {
    held.push(socket);
    connections += 1;
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => silentPostgres.listen(0, '127.0.0.1', resolve));
  const { port } = silentPostgres.address() as net.AddressInfo;
  databaseUrl = `postgres://vantageedge:vantageedge@127.0.0.1:${port}/vantageedge`;
});

afterAll(async () => {
  await stopAllServices();
  for (const socket of held) socket.destroy();
  await new Promise<void>((resolve) => silentPostgres.close(() => resolve()));
}, 60_000);

function commonEnv(): Record<string, string> {
  return {
    DATABASE_URL: databaseUrl,
    EVENT_STORE: 'postgres',
    REDIS_URL: TEST_INFRA.redisUrl,
    KAFKA_BROKERS: TEST_INFRA.kafkaBrokers.join(','),
    SNAPSHOT_BUS: 'kafka',
    SNAPSHOT_TOPIC: uniqueTopic('start-up-signals'),
    LOG_LEVEL: 'info',
    OTEL_ENABLED: 'false',
    // Far beyond the test's wait: only a prompt stop passes.
    PROJECTOR_SHUTDOWN_TIMEOUT_SECONDS: '600',
  };
}

async function stopsPromptly(start: () => ServiceProcess): Promise<void> {
  const before = connections;
  const service = start();
  // Its connection to PostgreSQL is open and unanswered: it is waiting.
  await eventually('the service connects to PostgreSQL', async () => connections > before, {
    timeoutMs: 60_000,
  });
  service.child.kill('SIGTERM');
  await eventually(`${service.name} exits`, async () => service.exited(), { timeoutMs: 20_000 }).catch(
    (error: Error) => {
      throw new Error(`${error.message}\n${service.tail()}`);
    },
  );
  expect(service.child.exitCode, service.tail()).toBe(0);
  expect(service.tail()).toContain('"message":"stopped"');
}

describe('SIGTERM while waiting for PostgreSQL at start-up', () => {
  it('the read-model projector exits 0 at once', async () => {
    const metricsPort = String(await freePort());
    await stopsPromptly(() =>
      startService('read-model-projector', ENTRY_POINTS.readModels, {
        ...commonEnv(),
        READ_MODEL_PROJECTOR_METRICS_PORT: metricsPort,
      }),
    );
  }, 120_000);

  it('the snapshot projector exits 0 at once', async () => {
    const metricsPort = String(await freePort());
    await stopsPromptly(() =>
      startService('snapshot-projector', ENTRY_POINTS.snapshots, {
        ...commonEnv(),
        SNAPSHOT_PROJECTOR_METRICS_PORT: metricsPort,
      }),
    );
  }, 120_000);
});
