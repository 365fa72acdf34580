// Readiness probe for infra/kafka.sh and infra/kafka-cluster.sh: exit 0 when the broker at argv[2]
// answers a metadata request listing at least argv[3] (default 1) alive brokers. One quick attempt; the
// caller polls.
import { Kafka, logLevel } from 'kafkajs';

const broker = process.argv[2] ?? '127.0.0.1:59092';
const expected = Number(process.argv[3] ?? '1');
const admin = new Kafka({
  clientId: 'vantageedge-infra-ready',
  brokers: [broker],
  logLevel: logLevel.NOTHING,
  connectionTimeout: 1000,
  requestTimeout: 2000,
  retry: { retries: 0 },
}).admin();

let code = 1;
try {
  await admin.connect();
  const cluster = await admin.describeCluster();
  if (cluster.brokers.length < expected) {
    throw new Error(`${cluster.brokers.length} alive brokers in the metadata, waiting for ${expected}`);
  }
  code = 0;
} catch (error) {
  console.error(`kafka not ready at ${broker}: ${error instanceof Error ? error.message : String(error)}`);
} finally {
  await admin.disconnect().catch(() => {});
}
process.exit(code);
