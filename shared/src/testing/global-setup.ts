import net from 'node:net';
import { Kafka, logLevel } from 'kafkajs';
import { stopIdleRequestQueueChecks } from '../snapshot-bus/kafkajs-idle-checks.js';
import { TEST_INFRA } from './infrastructure.js';

function reachable(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port, timeout: 2000 });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

async function kafkaAnswers(brokers: readonly string[]): Promise<boolean> {
  stopIdleRequestQueueChecks();
  const admin = new Kafka({
    clientId: 've-test-global-setup',
    brokers: [...brokers],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 3000,
    retry: { retries: 3 },
  }).admin();
  try {
    await admin.connect();
    return (await admin.describeCluster()).brokers.length > 0;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

/**
 * Integration tests need the real servers. If one is not reachable the whole run fails here, loudly
 * and by name, instead of tests skipping themselves.
 */
export default async function checkInfrastructure(): Promise<void> {
  const database = new URL(TEST_INFRA.databaseUrl);
  const redis = new URL(TEST_INFRA.redisUrl);
  const servers: Array<[string, string, number]> = [
    ['PostgreSQL', database.hostname, Number(database.port || 5432)],
    ['Redis', redis.hostname, Number(redis.port || 6379)],
    ...TEST_INFRA.kafkaBrokers.map((broker): [string, string, number] => {
      const [host = '127.0.0.1', port = '9092'] = broker.split(':');
      return ['Kafka', host, Number(port)];
    }),
  ];
  const missing: string[] = [];
  for (const [name, host, port] of servers) {
    if (!(await reachable(host, port))) missing.push(`${name} at ${host}:${port}`);
  }
  // An open Kafka port is not a ready broker (it listens well before it serves metadata).
  if (missing.length === 0 && !(await kafkaAnswers(TEST_INFRA.kafkaBrokers))) {
    missing.push(
      `Kafka at ${TEST_INFRA.kafkaBrokers.join(',')} (port open, but no answer to a metadata request)`,
    );
  }
  if (missing.length > 0) {
    throw new Error(
      `integration tests need ${missing.join(', ')}: not reachable. Run \`make infra-up\` first.`,
    );
  }
}
