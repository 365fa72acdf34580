import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LOCAL_DEFAULTS } from '../settings/common-settings.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** Where integration tests find the local servers started by `make infra-up`. */
export const TEST_INFRA = {
  databaseUrl: process.env['TEST_DATABASE_URL'] ?? LOCAL_DEFAULTS.DATABASE_URL,
  redisUrl: process.env['TEST_REDIS_URL'] ?? LOCAL_DEFAULTS.REDIS_URL,
  kafkaBrokers: (process.env['TEST_KAFKA_BROKERS'] ?? LOCAL_DEFAULTS.KAFKA_BROKERS).split(','),
  /** The same broker's SASL_SSL listener (infra/kafka.sh): SCRAM-SHA-512 over TLS from its local CA. */
  kafkaSaslSsl: {
    brokers: (process.env['TEST_KAFKA_SASL_SSL_BROKERS'] ?? '127.0.0.1:59094').split(','),
    caFile:
      process.env['TEST_KAFKA_TLS_CA_FILE'] ??
      path.join(process.env['VE_DATA'] ?? path.join(REPO_ROOT, '.data'), 'kafka/tls/ca.crt'),
    username: process.env['VE_KAFKA_SASL_USERNAME'] ?? 'vantageedge',
    password: process.env['VE_KAFKA_SASL_PASSWORD'] ?? 'vantageedge-local-scram',
  },
} as const;

/** A short random suffix for per-test databases, key prefixes and topics. */
export function uniqueSuffix(): string {
  return `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
}
