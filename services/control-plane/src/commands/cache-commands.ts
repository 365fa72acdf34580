import {
  PATH_PREFIX_MAX_LENGTH,
  PATH_PREFIXES_MAX,
  parsePathPrefix,
} from '@vantageedge/shared/cache-purge/path-prefix';
import {
  CACHE_TAG_MAX_LENGTH,
  CACHE_TAGS_MAX,
  SoftPurgedTagsFull,
} from '@vantageedge/shared/cache-purge/purge-protocol';
import { streamName } from '@vantageedge/shared/domain/events';
import { z } from 'zod';
import type { CachePurger } from '../cache-purge/cache-purger.js';
import { notFound, unavailable } from '../domain/errors.js';
import { routeDecider } from '../domain/route.js';
import { foldLatest } from './aggregate-folds.js';
import {
  type CommandContext,
  type CommandDeps,
  type CommandOutcome,
  chargeEventBytes,
  eventMetadata,
  requireAccess,
  unknownTenantOfPath,
} from './context.js';
import { requireLiveTenant, requireWritableResource } from './lookups.js';
import { loadTenant } from './tenant-directory.js';
import { limitExceeded } from './tenant-limits.js';

export interface CachePurgeResource {
  id: string;
  tenant_id: string;
  route_id: string | null;
  /** Present for a purge by tag. */
  tags?: string[];
  /** Present for a purge by URL prefix: the prefixes as the router reads them (`/products`). */
  prefixes?: string[];
  soft?: boolean;
  purged_at: string;
}

/** A purge prefix, read as the router reads paths: the normalised prefix and its path tag. */
const pathPrefix = z
  .string()
  .min(1)
  .max(PATH_PREFIX_MAX_LENGTH)
  .transform((raw, ctx) => {
    const parsed = parsePathPrefix(raw);
    if (parsed.ok) return { prefix: parsed.prefix, tag: parsed.tag };
    ctx.addIssue({ code: 'custom', message: parsed.issue });
    return z.NEVER;
  });

/**
 * Body of POST /api/v1/tenants/:id/cache/purge: none (the whole tenant), or the tags and/or URL
 * prefixes to purge.
 */
export const purgeTenantCacheBody = z
  .strictObject({
    tags: z
      .array(
        z
          .string()
          .min(1)
          .max(CACHE_TAG_MAX_LENGTH)
          // The separators of the gateways' reading of Surrogate-Key and Cache-Tag (ASCII only).
          .regex(/^[^\t\n\v\f\r ,]+$/, 'a tag has no whitespace or comma'),
      )
      .min(1)
      .max(CACHE_TAGS_MAX)
      .optional(),
    /** Every response whose path is this segment or below it (`/products/` = `/products`). */
    prefixes: z.array(pathPrefix).min(1).max(PATH_PREFIXES_MAX).optional(),
    /** With tags or prefixes: mark the tagged responses stale (revalidated on use, kept for stale-if-error). */
    soft: z.boolean().optional(),
  })
  .refine((body) => body.soft === undefined || body.tags !== undefined || body.prefixes !== undefined, {
    path: ['soft'],
    message: 'soft purges are by tag or prefix: give tags or prefixes',
  });

type PurgeTenantCacheBody = z.infer<typeof purgeTenantCacheBody>;

/** What one purge drops: a route, the whole tenant, or what tags and prefixes select. */
interface PurgeSelection {
  tags?: string[] | undefined;
  prefixes?: PurgeTenantCacheBody['prefixes'];
  soft: boolean;
}

/** Purge requests of a tenant are recorded in their own stream: `cache-<tenant id>` (audit: resource "cache"). */
export const cacheStream = (tenantId: string) => `cache-${tenantId}`;

function requirePurger(purger: CachePurger | undefined): CachePurger {
  if (!purger) {
    throw unavailable('cache_purge_unavailable', 'this control plane has no cache to purge (set REDIS_URL)');
  }
  return purger;
}

/**
 * Purges first, then records `CachePurgeRequested`: the event states a purge that happened, so a purge
 * that failed (Redis down) is `unavailable` and leaves no trace in the log.
 */
async function purgeAndRecord(
  deps: CommandDeps,
  ctx: CommandContext,
  tenantId: string,
  routeId: string | null,
  selection: PurgeSelection = { soft: false },
): Promise<CommandOutcome<CachePurgeResource>> {
  const purger = requirePurger(deps.cachePurger);
  const { tags, soft } = selection;
  const prefixes = selection.prefixes ? [...new Set(selection.prefixes.map((p) => p.prefix))] : undefined;
  const prefixTags = selection.prefixes ? [...new Set(selection.prefixes.map((p) => p.tag))] : [];
  const selected = {
    ...(tags ? { tags } : {}),
    ...(prefixes ? { prefixes } : {}),
    ...(tags || prefixes ? { soft } : {}),
  };
  const metadata = eventMetadata(deps, ctx, tenantId);
  const event = {
    type: 'CachePurgeRequested',
    data: { tenant_id: tenantId, route_id: routeId, ...selected },
    metadata,
  };
  // Before the purge: a purge refused by the tenant's event bytes budget purges nothing either.
  await chargeEventBytes(deps.commandBudget, [event]);
  let field = 'tags';
  try {
    if (tags || prefixes) {
      if (soft) {
        // One soft purge: refused by the soft-purged tags bound, it marks neither tags nor prefixes.
        if (!tags) field = 'prefixes';
        await purger.purgeTags(tenantId, [...(tags ?? []), ...prefixTags], { soft });
      } else {
        // Two purges at most, each within the protocol's tags-per-message limit.
        if (tags) await purger.purgeTags(tenantId, tags);
        field = 'prefixes';
        if (prefixTags.length > 0) await purger.purgeTags(tenantId, prefixTags);
      }
    } else if (routeId) await purger.purgeRoute(tenantId, routeId);
    else await purger.purgeTenant(tenantId);
  } catch (error) {
    if (error instanceof SoftPurgedTagsFull) {
      throw limitExceeded(
        field,
        `${error.message}: purge these tags without soft, hard-purge older soft-purged tags, or purge the whole tenant's cache`,
      );
    }
    throw unavailable(
      'cache_purge_unavailable',
      // The driver's message names hosts and ports of the platform: it goes to the log, not the caller.
      'the cache could not be purged now (its store is unreachable); try again shortly',
      error,
    );
  }
  const appended = await deps.store.appendToStream(cacheStream(tenantId), [event]);
  return {
    resource: {
      id: routeId ?? tenantId,
      tenant_id: tenantId,
      route_id: routeId,
      ...selected,
      purged_at: metadata.occurred_at,
    },
    revision: appended.nextExpectedRevision,
    position: appended.position,
  };
}

/** POST /api/v1/routes/:id/cache/purge */
export async function purgeRouteCache(
  deps: CommandDeps,
  ctx: CommandContext,
  routeId: string,
): Promise<CommandOutcome<CachePurgeResource>> {
  const route = await foldLatest(deps.store, streamName.route(routeId), routeDecider);
  // Access first: another tenant's caller gets the same not_found for a deleted route as for a live one.
  const data = await requireWritableResource(deps, ctx, route, 'route');
  if (route.status === 'deleted') throw notFound('route', 'id');
  try {
    return await purgeAndRecord(deps, ctx, data.tenant_id, routeId);
  } finally {
    await forgetIfDeletedMeanwhile(deps, data.tenant_id, routeId).catch(() => {});
    await forgetIfTenantDeletedMeanwhile(deps, data.tenant_id).catch(() => {});
  }
}

/**
 * A delete landing between the purge's check and its bump forgot the route's generation before the
 * bump wrote it again, for good: read after the bump, the delete is seen here, or its forget comes after
 * the bump. Best effort (the caller ignores its failure), as the delete's own forget.
 */
async function forgetIfDeletedMeanwhile(deps: CommandDeps, tenantId: string, routeId: string): Promise<void> {
  if (deps.cachePurger?.forgetRoute === undefined) return;
  const route = await foldLatest(deps.store, streamName.route(routeId), routeDecider);
  if (route.status === 'deleted') await deps.cachePurger.forgetRoute(tenantId, routeId);
}

/**
 * The same for the tenant: a tenant delete landing between a purge's check and its bump forgot the
 * tenant's keys (CachePurger.forgetTenant) before the bump wrote its generation hash again, for good. A route purge counts too: a route outlives its deleted tenant's check.
 */
async function forgetIfTenantDeletedMeanwhile(deps: CommandDeps, tenantId: string): Promise<void> {
  if (deps.cachePurger?.forgetTenant === undefined) return;
  const tenant = await loadTenant(deps.store, tenantId, deps.streamFolds);
  if (tenant.status === 'deleted') await deps.cachePurger.forgetTenant(tenantId);
}

/** POST /api/v1/tenants/:id/cache/purge */
export async function purgeTenantCache(
  deps: CommandDeps,
  ctx: CommandContext,
  tenantId: string,
  body: PurgeTenantCacheBody = {},
): Promise<CommandOutcome<CachePurgeResource>> {
  await requireAccess(deps, ctx.caller, tenantId, 'write', unknownTenantOfPath);
  await requireLiveTenant(deps, tenantId, 'id');
  try {
    return await purgeAndRecord(deps, ctx, tenantId, null, {
      tags: body.tags,
      prefixes: body.prefixes,
      soft: body.soft ?? false,
    });
  } finally {
    await forgetIfTenantDeletedMeanwhile(deps, tenantId).catch(() => {});
  }
}
