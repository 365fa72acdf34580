import { hash } from 'node:crypto';
import { z } from 'zod';

/**
 * How a purge reaches every gateway replica's response cache (the control plane sends purges, the
 * gateways' caches receive and send them). Both sides speak it through this module only.
 *
 * - Every cache key of a tenant lives under `<prefix>c:{<tenant_id>}:` (the `{…}` hash tag keeps a
 *   tenant's keys on one Redis Cluster slot) and embeds the tenant's purge generations.
 * - The generations are one Redis hash per tenant, `<prefix>c:{<tenant_id>}:gen`: field `_tenant` for
 *   the whole tenant, one field per route id. A purge increments a field (HINCRBY), so every key built
 *   with the old generation becomes unreachable at once (no SCAN, no DEL; old entries expire by TTL).
 *   A deleted route's field is dropped (the hash has no TTL: route churn would grow it for ever); its
 *   generation is kept in field `_retired` (the highest of them), above which a route without a field
 *   starts at its first purge, so a route restored under its old id never reaches its old entries.
 * - The new generation is published as JSON on `<prefix>vantageedge:cache:purge`, so replicas drop
 *   their in-process copies at once instead of at their next generation reload. The same channel
 *   carries `path` messages: a replica that saw an unsafe method on a path tells the others to drop
 *   that path's cached variants.
 */

export const TENANT_GENERATION_FIELD = '_tenant';
/** The highest generation a deleted route had: where the next purge of a route without a field starts. */
export const RETIRED_ROUTES_FIELD = '_retired';
/** How many soft-purged tags (fields `tag:<tag>`) the hash holds: counting them would walk every field. */
export const SOFT_TAGS_HELD_FIELD = '_soft_tags';

/** Where all cache keys of a tenant live: `<prefix>c:{<tenant_id>}:`. */
export function tenantKeyspace(keyPrefix: string, tenantId: string): string {
  return `${keyPrefix}c:{${tenantId}}:`;
}

/** The Redis hash holding a tenant's purge generations. */
export function generationKey(keyPrefix: string, tenantId: string): string {
  return `${tenantKeyspace(keyPrefix, tenantId)}gen`;
}

/**
 * A tenant's share of the store (the gateways' byte bound, docs/cache.md): `bound:lru` (ZSET, stored key
 * → last use), `bound:sizes` (HASH, key → bytes charged), `bound:bytes` (their sum) and `bound:lists`
 * (HASH, key → the sets it is listed in). No TTL: memory pressure must not reset a tenant's count.
 */
export function tenantBoundKeys(
  keyPrefix: string,
  tenantId: string,
): [lru: string, sizes: string, bytes: string, lists: string] {
  const keyspace = tenantKeyspace(keyPrefix, tenantId);
  return [
    `${keyspace}bound:lru`,
    `${keyspace}bound:sizes`,
    `${keyspace}bound:bytes`,
    `${keyspace}bound:lists`,
  ];
}

/**
 * The newest config version (decimal) whose byte bound a gateway trimmed the tenant's share for: a
 * replica applying an older version later than another applied a newer one trims nothing with that
 * older bound. No TTL, as the share's keys.
 */
export function tenantBoundVersionKey(keyPrefix: string, tenantId: string): string {
  return `${tenantKeyspace(keyPrefix, tenantId)}bound:version`;
}

/**
 * When each of a tenant's listings (a tag set, a path index) was last purged, by the Redis clock: a
 * sorted set `<prefix>c:{<tenant_id>}:purged`, listing → epoch ms. A fill whose origin was asked before
 * a purge of one of its listings may hold the answer the purge was meant to remove, and is not stored:
 * the purge found nothing of it to delete. Kept PURGE_FENCE_MS after the last purge (longer than any fill
 * may run); at most PURGE_FENCE_MAX_LISTINGS listings: the oldest leave first and member '' keeps the
 * latest time of those that left, which then counts for every listing.
 */
export function purgeFenceKey(keyPrefix: string, tenantId: string): string {
  return `${tenantKeyspace(keyPrefix, tenantId)}purged`;
}

/**
 * How long a purge is remembered for the fills under way: longer than a fill may run (a 5 s lease wait,
 * a 60 s connect and 300 s response-head timeout, the 30 s body deadline).
 */
export const PURGE_FENCE_MS = 600_000;
/** The most members of a tenant's purge fence: the listings it names one by one (up to ≈ 210 bytes each in Redis, a path index) and ''. */
export const PURGE_FENCE_MAX_LISTINGS = 4_096;
/** The fence member holding the latest purge time of the listings no longer named. */
export const PURGE_FENCE_HORIZON = '';

/**
 * The set of a tenant's cache keys an origin tagged with `tag` (Surrogate-Key / Cache-Tag): one Redis
 * set per tag, `<prefix>c:{<tenant_id>}:tag:<digest of the tag>`, members with the key prefix.
 */
export function tagIndexKey(keyPrefix: string, tenantId: string, tag: string): string {
  return `${tenantKeyspace(keyPrefix, tenantId)}tag:${hash('sha256', tag, 'base64url').slice(0, 22)}`;
}

/** At most this many tags per purge request and per stored response; each at most CACHE_TAG_MAX_LENGTH. */
export const CACHE_TAGS_MAX = 64;
export const CACHE_TAG_MAX_LENGTH = 256;

/**
 * At most this many soft-purged tags per tenant in its generation hash (fields `tag:<tag>`, no TTL,
 * never evicted): ≈ 3 MB of the shared Redis at 256-character tags. A hard purge of a tag, or of the
 * whole tenant, frees its fields.
 */
export const CACHE_SOFT_PURGED_TAGS_MAX = 10_000;

/** A soft purge refused: the tenant's generation hash holds CACHE_SOFT_PURGED_TAGS_MAX soft-purged tags. */
export class SoftPurgedTagsFull extends Error {
  override readonly name = 'SoftPurgedTagsFull';
  constructor(readonly held: number) {
    super(`the tenant has ${held} soft-purged tags, the most it may keep is ${CACHE_SOFT_PURGED_TAGS_MAX}`);
  }
}

/** The pub/sub channel purge messages travel on. */
export function purgeChannel(keyPrefix: string): string {
  return `${keyPrefix}vantageedge:cache:purge`;
}

const generation = z.number().int().min(1);

export const cachePurgeMessage = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('route'), tenantId: z.string().min(1), routeId: z.string().min(1), generation }),
  z.object({ kind: z.literal('tenant'), tenantId: z.string().min(1), generation }),
  /** Drop every cached variant listed under this path index key (without the key prefix). */
  z.object({ kind: z.literal('path'), pathIndexKey: z.string().min(1) }),
  /** Drop every entry of the tenant the origin tagged with one of `tags` (already gone from Redis). */
  z.object({
    kind: z.literal('tags'),
    tenantId: z.string().min(1),
    tags: z.array(z.string().min(1).max(CACHE_TAG_MAX_LENGTH)).min(1).max(CACHE_TAGS_MAX),
    /** A soft purge (epoch ms): the entries stay, stale from then on. */
    softAt: z.number().int().positive().optional(),
  }),
]);
export type CachePurgeMessage = z.infer<typeof cachePurgeMessage>;

/** What to purge: one route of a tenant, or the whole tenant. */
export type PurgeTarget =
  | { kind: 'route'; tenantId: string; routeId: string }
  | { kind: 'tenant'; tenantId: string };

/** Generation-less purge: the entries tagged with any of `tags`. */
export interface TagPurgeTarget {
  kind: 'tags';
  tenantId: string;
  tags: readonly string[];
  /** Mark the entries stale (kept for stale-if-error and revalidation) instead of deleting them. */
  soft?: boolean | undefined;
}

export function encodePurgeMessage(message: CachePurgeMessage): string {
  return JSON.stringify(message);
}

export type TagsPurgeMessage = Extract<CachePurgeMessage, { kind: 'tags' }>;

/**
 * A tag purge as the channel carries it: messages of at most CACHE_TAGS_MAX tags each, which every
 * replica's parsePurgeMessage takes (a soft purge of tags and prefixes together names more).
 */
export function tagPurgeMessages(message: TagsPurgeMessage): TagsPurgeMessage[] {
  const messages: TagsPurgeMessage[] = [];
  for (let start = 0; start < message.tags.length; start += CACHE_TAGS_MAX)
    messages.push({ ...message, tags: message.tags.slice(start, start + CACHE_TAGS_MAX) });
  return messages;
}

/** null for anything that is not a valid message (the channel is not trusted to be well-formed). */
export function parsePurgeMessage(text: string): CachePurgeMessage | null {
  try {
    const parsed = cachePurgeMessage.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/** A tenant's purge generations (0 when never purged). */
export interface PurgeGenerations {
  tenant: number;
  routes: Map<string, number>;
  /**
   * Soft purges by tag: tag → when (epoch ms). Entries with the tag stored before then are stale
   * (revalidated on use, still served for stale-if-error). Fields `tag:<tag>` of the generation hash.
   */
  softTags: Map<string, number>;
}

/** The generation-hash field of a soft purge of `tag`. */
export const SOFT_TAG_FIELD_PREFIX = 'tag:';

/** Reads the generation hash as HGETALL returns it; fields that are not whole numbers count as 0. */
export function parseGenerations(hash: Record<string, string>): PurgeGenerations {
  const count = (value: string | undefined) => {
    const n = Number(value ?? 0);
    return Number.isSafeInteger(n) && n > 0 ? n : 0;
  };
  const generations: PurgeGenerations = {
    tenant: count(hash[TENANT_GENERATION_FIELD]),
    routes: new Map(),
    softTags: new Map(),
  };
  for (const [field, value] of Object.entries(hash)) {
    if (field === TENANT_GENERATION_FIELD || field === RETIRED_ROUTES_FIELD || field === SOFT_TAGS_HELD_FIELD)
      continue;
    if (field.startsWith(SOFT_TAG_FIELD_PREFIX))
      generations.softTags.set(field.slice(SOFT_TAG_FIELD_PREFIX.length), count(value));
    else generations.routes.set(field, count(value));
  }
  return generations;
}

/** The generation field a target bumps. */
export function generationField(target: PurgeTarget): string {
  return target.kind === 'tenant' ? TENANT_GENERATION_FIELD : target.routeId;
}

/** The message announcing a bumped generation. */
export function purgeMessageFor(target: PurgeTarget, bumped: number): CachePurgeMessage {
  return target.kind === 'tenant'
    ? { kind: 'tenant', tenantId: target.tenantId, generation: bumped }
    : { kind: 'route', tenantId: target.tenantId, routeId: target.routeId, generation: bumped };
}

/** Sends purges to every gateway replica. */
export interface CachePurger {
  purgeRoute(tenantId: string, routeId: string): Promise<void>;
  purgeTenant(tenantId: string): Promise<void>;
  /**
   * Drops a deleted route's generation (its next purge, once restored, goes above it). Absent where
   * the generations do not outlive the process (the single-process dev cache).
   */
  forgetRoute?(tenantId: string, routeId: string): Promise<void>;
  /**
   * Drops everything the store keeps of a deleted tenant: its entries and what lists them, its share's
   * accounting and its generations (the last two never expire; the entries may be kept for decades).
   * Absent where the store does not outlive the process.
   */
  forgetTenant?(tenantId: string): Promise<void>;
  /**
   * Drops every cached response of the tenant whose origin tagged it with one of `tags`. A soft purge
   * marks them stale instead: all of them are soft-purged, or none (SoftPurgedTagsFull).
   */
  purgeTags(
    tenantId: string,
    tags: readonly string[],
    options?: { soft?: boolean | undefined },
  ): Promise<void>;
}
