import { redisSettings } from '@vantageedge/shared/redis/client';
import { booleanFlag, redisKeyPrefix } from '@vantageedge/shared/settings/common-settings';
import { z } from 'zod';
import { DEFAULT_USAGE_RETENTION_DAYS } from './usage-flusher.js';

/** The usage flusher's settings (read by the read-model projector process that runs it). */
export const usageFlusherSettings = {
  ...redisSettings,
  /** Off: this process moves no usage (another projector process does). */
  USAGE_FLUSHER_ENABLED: booleanFlag.default(true),
  /** How often the gateways' usage batches are moved from Redis into usage_counts. */
  USAGE_FLUSH_INTERVAL_MS: z.coerce.number().int().min(100).max(600_000).default(2_000),
  /** The gateways' Redis key prefix (same value as theirs): where their usage batches are. */
  GATEWAY_REDIS_KEY_PREFIX: redisKeyPrefix,
  /**
   * Days of hourly usage kept: older usage_counts rows are deleted (hourly, and at start); 0 keeps them
   * forever. Applied batch ids (usage_batches) are kept 14 days whatever this says.
   */
  USAGE_RETENTION_DAYS: z.coerce.number().int().min(0).max(36_500).default(DEFAULT_USAGE_RETENTION_DAYS),
};
