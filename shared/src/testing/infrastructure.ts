import { LOCAL_DEFAULTS } from '../settings/common-settings.js';

/** Where integration tests find the local servers started by `make infra-up`. */
export const TEST_INFRA = {
  databaseUrl: process.env['TEST_DATABASE_URL'] ?? LOCAL_DEFAULTS.DATABASE_URL,
  redisUrl: process.env['TEST_REDIS_URL'] ?? LOCAL_DEFAULTS.REDIS_URL,
  kafkaBrokers: (process.env['TEST_KAFKA_BROKERS'] ?? LOCAL_DEFAULTS.KAFKA_BROKERS).split(','),
} as const;

/** A short random suffix for per-test databases, key prefixes and topics. */
export function uniqueSuffix(): string {
  return `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
}
