import type { RedisClient } from '@vantageedge/shared/redis/client';
import { z } from 'zod';
import type { CommandBudget } from '../commands/context.js';
import { rateLimited } from '../domain/errors.js';
import {
  type BucketRate,
  MemoryTokenBuckets,
  RedisTokenBuckets,
  type TokenBuckets,
} from './token-buckets.js';

/**
 * The admin API's rate limits. Every command appends to the one event log that every projector and
 * gateway folds (and that every tenant's control plane stores on one disk), so one tenant's admins (or a
 * leaked token in a loop) may not write without bound:
 * - per tenant, its commands (writes that append events), whoever sends them — platform admins too;
 * - per tenant, the bytes of the events its commands append (a command may append up to megabytes);
 * - per caller (Clerk user), every /api/v1 request, reads included: more generous.
 * All are token buckets keyed only by what authentication and authorization established (the
 * verified user id; a tenant the caller was just allowed to write), never by a value a client picks.
 * Over a limit: 429 `admin_rate_limited`, the limit in `details[0].field`, and Retry-After.
 */

export interface AdminRateLimits {
  /** Commands per tenant; null: no limit. */
  tenantCommands: BucketRate | null;
  /** Requests per caller; null: no limit. */
  userRequests: BucketRate | null;
  /** Bytes of events appended per tenant (a bucket of bytes); null or absent: no limit. */
  tenantEventBytes?: BucketRate | null | undefined;
}

const MIB = 1_048_576;
/**
 * 64 MiB an hour, burst the same: a tenant's whole config is at most ~33 MB (1,000 routes of 32 KiB),
 * so an honest tenant can still re-apply all of it at once, yet one tenant adds at most ~1.5 GiB a day.
 */
export const DEFAULT_TENANT_EVENT_BYTES_PER_HOUR = 64 * MIB;

export const DEFAULT_ADMIN_RATE_LIMITS: AdminRateLimits = {
  tenantCommands: { perMinute: 600, burst: 100 },
  userRequests: { perMinute: 3000, burst: 500 },
  tenantEventBytes: {
    perMinute: DEFAULT_TENANT_EVENT_BYTES_PER_HOUR / 60,
    burst: DEFAULT_TENANT_EVENT_BYTES_PER_HOUR,
  },
};

const rate = (fallback: number) => z.coerce.number().int().min(0).max(1_000_000).default(fallback);
const burst = (fallback: number) => z.coerce.number().int().min(1).max(1_000_000).default(fallback);
const bytes = (min: number, fallback: number) =>
  z.coerce.number().int().min(min).max(1_099_511_627_776).default(fallback);

/** The settings (validated where the control plane loads its settings); a rate of 0 turns its limit off. */
export const adminRateLimitSettings = {
  CONTROL_PLANE_TENANT_COMMANDS_PER_MINUTE: rate(600),
  CONTROL_PLANE_TENANT_COMMANDS_BURST: burst(100),
  CONTROL_PLANE_USER_REQUESTS_PER_MINUTE: rate(3000),
  CONTROL_PLANE_USER_REQUESTS_BURST: burst(500),
  CONTROL_PLANE_TENANT_EVENT_BYTES_PER_HOUR: bytes(0, DEFAULT_TENANT_EVENT_BYTES_PER_HOUR),
  CONTROL_PLANE_TENANT_EVENT_BYTES_BURST: bytes(1, DEFAULT_TENANT_EVENT_BYTES_PER_HOUR),
};

type AdminRateLimitSettings = z.infer<z.ZodObject<typeof adminRateLimitSettings>>;

export function adminRateLimitsFromSettings(settings: AdminRateLimitSettings): AdminRateLimits {
  const limit = (perMinute: number, size: number): BucketRate | null =>
    perMinute === 0 ? null : { perMinute, burst: size };
  return {
    tenantCommands: limit(
      settings.CONTROL_PLANE_TENANT_COMMANDS_PER_MINUTE,
      settings.CONTROL_PLANE_TENANT_COMMANDS_BURST,
    ),
    userRequests: limit(
      settings.CONTROL_PLANE_USER_REQUESTS_PER_MINUTE,
      settings.CONTROL_PLANE_USER_REQUESTS_BURST,
    ),
    tenantEventBytes: limit(
      settings.CONTROL_PLANE_TENANT_EVENT_BYTES_PER_HOUR / 60,
      settings.CONTROL_PLANE_TENANT_EVENT_BYTES_BURST,
    ),
  };
}

export interface AdminRateLimitOptions {
  limits: AdminRateLimits;
  /** Buckets shared by every control-plane replica; absent (or failing) → each replica counts alone. */
  redis?: RedisClient | undefined;
  /** Prefix of the Redis keys (GATEWAY_REDIS_KEY_PREFIX: one namespace per deployment on a shared Redis). */
  keyPrefix?: string | undefined;
  /** Most buckets kept in memory per limit (least recently used out). Default 100,000. */
  maxBucketsInMemory?: number | undefined;
  /** The memory buckets' clock (ms); Redis uses its own. */
  now?: (() => number) | undefined;
  /** A Redis call failed and this replica's memory decided instead. */
  onStoreError?: ((error: unknown) => void) | undefined;
  /** A request or command was refused, by which limit. */
  onLimited?: ((limit: AdminLimitName) => void) | undefined;
}

export type AdminLimitName =
  | 'tenant_commands_per_minute'
  | 'user_requests_per_minute'
  | 'tenant_event_bytes_per_hour';

export interface AdminRateLimiter {
  /** Counts one /api/v1 request of an authenticated caller; throws `rate_limited` over the limit. */
  chargeUser(userId: string): Promise<void>;
  /** Counts one command on a tenant the caller may write; throws `rate_limited` over the limit. */
  chargeTenant(tenantId: string): Promise<void>;
  /** Counts the bytes of events about to be appended on a tenant; throws `rate_limited` over the limit. */
  chargeTenantEventBytes(tenantId: string, bytes: number): Promise<void>;
  /**
   * A request's budget: charges each tenant's command limit once, however many streams the command
   * writes (a config apply), and the bytes of the events it appends.
   */
  commandBudget(): CommandBudget;
}

export function createAdminRateLimiter(options: AdminRateLimitOptions): AdminRateLimiter {
  const buckets = (kind: string): TokenBuckets => {
    const memory = new MemoryTokenBuckets({
      ...(options.maxBucketsInMemory ? { maxKeys: options.maxBucketsInMemory } : {}),
      ...(options.now ? { now: options.now } : {}),
    });
    return options.redis
      ? new RedisTokenBuckets(
          options.redis,
          `${options.keyPrefix ?? ''}cp:admin-rate:${kind}:`,
          memory,
          options.onStoreError,
        )
      : memory;
  };
  const users = buckets('user');
  const tenants = buckets('tenant');
  const tenantBytes = buckets('tenant-bytes');

  async function charge(
    store: TokenBuckets,
    key: string,
    bucket: BucketRate | null | undefined,
    limit: AdminLimitName,
    what: string,
    cost = 1,
  ): Promise<void> {
    if (!bucket) return;
    const take = await store.take(key, bucket, cost);
    if (take.allowed) return;
    options.onLimited?.(limit);
    const retryAfterSeconds = Math.max(1, Math.ceil(take.retryAfterMs / 1000));
    throw rateLimited(
      'admin_rate_limited',
      `too many ${what}: retry in ${retryAfterSeconds} s`,
      limit,
      limit === 'tenant_event_bytes_per_hour'
        ? `at most ${Math.round(bucket.perMinute * 60)} bytes of events per hour (burst ${bucket.burst})`
        : `at most ${bucket.perMinute} per minute (burst ${bucket.burst})`,
      retryAfterSeconds,
    );
  }

  const limiter: AdminRateLimiter = {
    chargeUser: (userId) =>
      charge(
        users,
        userId,
        options.limits.userRequests,
        'user_requests_per_minute',
        'admin API requests from this caller',
      ),
    chargeTenant: (tenantId) =>
      charge(
        tenants,
        tenantId,
        options.limits.tenantCommands,
        'tenant_commands_per_minute',
        'commands on this tenant',
      ),
    chargeTenantEventBytes: (tenantId, bytes) =>
      charge(
        tenantBytes,
        tenantId,
        options.limits.tenantEventBytes,
        'tenant_event_bytes_per_hour',
        'bytes of events appended on this tenant',
        bytes,
      ),
    commandBudget() {
      const charged = new Set<string>();
      const prepaid = new Set<string>();
      return {
        async charge(tenantId) {
          if (charged.has(tenantId)) return;
          charged.add(tenantId);
          await limiter.chargeTenant(tenantId);
        },
        async chargeEventBytes(tenantId, bytes) {
          if (!prepaid.has(tenantId)) await limiter.chargeTenantEventBytes(tenantId, bytes);
        },
        async prepayEventBytes(tenantId, bytes) {
          await limiter.chargeTenantEventBytes(tenantId, bytes);
          prepaid.add(tenantId);
        },
      };
    },
  };
  return limiter;
}
