import { requestSnapshotRepublish } from '@vantageedge/projections/snapshots/republish';
import { uuidId } from '@vantageedge/shared/domain/uuid-id';
import type { EventStore } from '@vantageedge/shared/event-store/port';
import { entityTagListMatches } from '@vantageedge/shared/http/entity-tags';
import type express from 'express';
import type { Request, RequestHandler, Response } from 'express';
import type pg from 'pg';
import { z } from 'zod';
import { type Authorizer, createAuthorizer } from '../auth/authorize.js';
import type { Caller, TenantAccess } from '../auth/caller.js';
import { callerOf } from '../auth/caller-middleware.js';
import { domainParam } from '../commands/custom-domain-commands.js';
import { createEventLogTenantDirectory } from '../commands/tenant-directory.js';
import { type ConfigReadBudget, configReadBudgetOf } from '../config-history/config-read-budget.js';
import { asSeenWith } from '../config-history/redact-match-values.js';
import { maxEventsReadOf } from '../config-history/tenant-events.js';
import { ApiError, forbidden, notFound, validationFailed } from '../http/errors.js';
import { exactRouter } from '../http/exact-routing.js';
import { ReplayRunner } from './admin-replay.js';
import type { ApiKeyQuotaReader } from './api-key-quota.js';
import { auditKey, auditLogQuery, listAuditEntries, presentAuditEntry } from './audit-log.js';
import { admitListedTenants, type OmittedTenant } from './audit-log-admission.js';
import { createConfigQueryRouter } from './config-router.js';
import { getCustomDomain, listCustomDomains } from './custom-domains.js';
import { readYourWrites } from './min-position.js';
import { cursorParam, limitParam, toPage } from './pagination.js';
import { getResource, listResources, tenantExists } from './read-model-store.js';
import { DEFAULT_READ_STATEMENT_TIMEOUT_MS, withReadTimeout } from './read-timeout.js';
import { parseQuery } from './request-validation.js';
import {
  apiKeyResource,
  type ResourceDefinition,
  type RowBase,
  routeResource,
  TENANT_CHILD_RESOURCES,
  tenantResource,
} from './resources.js';
import { type TagFilter, tagFilterParam } from './tag-filter.js';
import { createTenantDirectory } from './tenant-directory.js';
import {
  createUsageReadGate,
  DEFAULT_USAGE_QUERY_TIMEOUT_MS,
  readUsage,
  UsageTooExpensiveError,
  usageQuery,
  usageWindow,
} from './usage.js';
import { allows, visibleTenantIds } from './visibility.js';

export interface QueryRouterDeps {
  pool: pg.Pool;
  /** Access as the read models say it (the app's counts the request on the tenants it grants). */
  authorizer: Authorizer;
  /**
   * Access as the event log says it now, for X-Min-Position's waits (the app's: the commands', counting
   * as `authorizer` does); default: an uncounted one over `eventStore`.
   */
  eventLogAuthorizer?: Authorizer;
  /**
   * Enables POST/GET /api/v1/admin/replay (platform admins) and a tenant's config at any position
   * (GET /api/v1/tenants/:id/config…). Without it those paths are not served.
   */
  eventStore?: EventStore;
  /** X-Min-Position: how long a query waits for the projector (default 2000 ms). */
  minPositionWaitMs?: number;
  /** Logs a replay that failed (the admin endpoint reports it too). */
  onReplayError?: (error: unknown) => void;
  /** The live quota counters for GET /api/v1/api-keys/:id (Redis); without it quota_usage is null. */
  apiKeyQuota?: ApiKeyQuotaReader | undefined;
  /** USAGE_QUERY_TIMEOUT_MS: how long each statement of a usage read may run (default 5000). */
  usageQueryTimeoutMs?: number | undefined;
  /**
   * CONTROL_PLANE_READ_STATEMENT_TIMEOUT_MS: how long each statement of every other read may run, the
   * event store's reads of a config at a position included (default 5000; 0: no limit); past it 503
   * `read_timeout`.
   */
  readStatementTimeoutMs?: number | undefined;
  /**
   * CONTROL_PLANE_CONFIG_READ_MAX_EVENTS: events of the log one config read may read (default 50,000;
   * 0: no limit); past it 503 `read_limit_exceeded`.
   */
  configReadMaxEvents?: number | undefined;
  clock?: () => number;
}

const listQuery = z.strictObject({
  tenant_id: uuidId().optional(),
  limit: limitParam,
  cursor: cursorParam,
  tags: tagFilterParam,
});
const tenantListQuery = z.strictObject({ limit: limitParam, cursor: cursorParam });
const resourceId = uuidId();

/**
 * The read side of the admin API: every GET is answered from the PostgreSQL read models.
 *
 * Visibility: a caller sees the tenants it has at least read access on (Authorizer), and their
 * children. A tenant the caller cannot see is treated as one that does not exist: GET of its
 * resources, or `?tenant_id=` of it, answers 404 `not_found` (never 403, so ids of other tenants are
 * not confirmed). 403 `forbidden` is only for a visible tenant where the caller lacks the rank the
 * endpoint needs (the audit log needs write access: tenant owners/admins, org admins).
 */
export function createQueryRouter(deps: QueryRouterDeps): express.Router {
  const { authorizer } = deps;
  // Reads run with a statement timeout; writes (republish, replay) and usage (its own) on the pool.
  const readTimeoutMs = deps.readStatementTimeoutMs ?? DEFAULT_READ_STATEMENT_TIMEOUT_MS;
  const pool = withReadTimeout(deps.pool, readTimeoutMs);
  const directory = createTenantDirectory(pool);
  const usageReads = createUsageReadGate();
  const usageTimeoutMs = deps.usageQueryTimeoutMs ?? DEFAULT_USAGE_QUERY_TIMEOUT_MS;
  const router = exactRouter();
  const eventLogAuthorizer =
    deps.eventLogAuthorizer ??
    (deps.eventStore ? createAuthorizer(createEventLogTenantDirectory(deps.eventStore)) : undefined);
  // X-Min-Position: only callers with access to what an endpoint serves wait (see readYourWrites).
  // Its shared poll reads one checkpoint row: no statement timeout (nor its transaction) for it.
  const minPosition = readYourWrites(
    {
      pool: deps.pool,
      store: deps.eventStore,
      directory,
      authorizers: eventLogAuthorizer ? [eventLogAuthorizer, authorizer] : [authorizer],
    },
    { maxWaitMs: deps.minPositionWaitMs ?? 2000, pollIntervalMs: 20 },
  );

  async function requireTenantAccess(
    req: Request,
    res: Response,
    tenantId: string,
    required: 'read' | 'write',
    /** Where the request named the tenant: `?tenant_id=`, or the path's id. */
    field: 'tenant_id' | 'id' = 'tenant_id',
  ) {
    const caller = callerOf(res);
    const access = (await tenantExists(pool, tenantId)) ? await authorizer.access(caller, tenantId) : 'none';
    if (access === 'none') {
      throw new ApiError(404, 'not_found', 'tenant not found', [{ field, issue: 'no such tenant' }]);
    }
    if (!allows(access, required)) throw forbidden(`${req.path} needs ${required} access to the tenant`);
    return access;
  }

  const list =
    (resource: ResourceDefinition): RequestHandler =>
    async (req, res) => {
      const caller = callerOf(res);
      let tenantIds: string[] | null;
      let limit: number;
      let cursor: bigint | undefined;
      let tags: TagFilter | undefined;
      if (resource === tenantResource) {
        ({ limit, cursor } = parseQuery(tenantListQuery, req.query));
        await minPosition.caughtUp(req, res, async () => ({ anyTenant: 'read' }));
        tenantIds = await visibleTenantIds({ pool, authorizer, directory }, caller, 'read');
      } else {
        const query = parseQuery(listQuery, req.query);
        ({ limit, cursor, tags } = query);
        if (tags !== undefined && !resource.tagged) {
          throw validationFailed([{ field: 'tags', issue: `${resource.path} have no tags` }]);
        }
        if (query.tenant_id !== undefined) {
          const tenant = query.tenant_id;
          await minPosition.caughtUp(req, res, async () => ({ tenant, required: 'read' }));
          await requireTenantAccess(req, res, tenant, 'read');
          tenantIds = [tenant];
        } else {
          await minPosition.caughtUp(req, res, async () => ({ anyTenant: 'read' }));
          tenantIds = await visibleTenantIds({ pool, authorizer, directory }, caller, 'read');
        }
      }
      const rows =
        tenantIds !== null && tenantIds.length === 0
          ? []
          : await listResources(pool, resource, { tenantIds, after: cursor ?? 0n, limit: limit + 1, tags });
      const accessOf = await accessByTenant(caller, rows.slice(0, limit));
      res.json(
        toPage(
          rows,
          limit,
          (row) => BigInt(row.created_position),
          // With its revision: a client acts on the item as listed (If-Match), not on a newer one.
          (row) => asSeenWith(accessOf(row), { ...resource.present(row), revision: row.revision }),
        ),
      );
    };

  /** The caller's access to the tenant of each row (a tenant row's own), asked once a tenant. */
  async function accessByTenant(caller: Caller, rows: readonly (RowBase & Record<string, unknown>)[]) {
    const tenantOf = (row: RowBase & Record<string, unknown>) =>
      typeof row['tenant_id'] === 'string' ? row['tenant_id'] : row.id;
    const access = new Map<string, TenantAccess>();
    for (const tenantId of new Set(rows.map(tenantOf))) {
      access.set(tenantId, caller.isPlatformAdmin ? 'write' : await authorizer.access(caller, tenantId));
    }
    return (row: RowBase & Record<string, unknown>): TenantAccess => access.get(tenantOf(row)) ?? 'none';
  }

  const get =
    (resource: ResourceDefinition): RequestHandler =>
    async (req, res) => {
      parseQuery(z.strictObject({}), req.query);
      const id = resourceId.safeParse(req.params['id']);
      if (!id.success)
        throw new ApiError(400, 'validation_failed', 'the request is not valid', [
          { field: 'id', issue: 'must be a uuid' },
        ]);
      await minPosition.caughtUp(req, res, async () => {
        const found = await getResource(pool, resource, id.data);
        // Not in the read models (yet): it may be the caller's fresh write, in a tenant it can read.
        return found?.tenant_id ? { resourceOf: found.tenant_id, required: 'read' } : { anyTenant: 'read' };
      });
      const row = await getResource(pool, resource, id.data);
      const tenantId = row?.tenant_id;
      const access = row && tenantId ? await authorizer.access(callerOf(res), tenantId) : 'none';
      if (!row || !tenantId || access === 'none') throw notFound(resource.name, 'id');
      // A reader sees a route without its match values: another representation, so another tag, and
      // neither copy is ever revalidated as the other (a reader promoted to writer in the same browser).
      const etag =
        resource === routeResource && access !== 'write' ? `"${row.revision}-redacted"` : `"${row.revision}"`;
      res.setHeader('ETag', etag);
      res.setHeader('Cache-Control', 'private, no-cache');
      if (resource === apiKeyResource) {
        // The key's quota counters move with traffic, not with its revision: never a 304.
        const quota = (row['quota'] ?? null) as Parameters<ApiKeyQuotaReader>[2];
        const usage = deps.apiKeyQuota ? await deps.apiKeyQuota(tenantId, row.id, quota) : null;
        res.json({ ...resource.present(row), quota_usage: usage });
        return;
      }
      const ifNoneMatch = req.get('if-none-match');
      if (ifNoneMatch !== undefined && entityTagListMatches(ifNoneMatch, etag)) {
        res.status(304).end();
        return;
      }
      res.json(asSeenWith(access, resource.present(row)));
    };

  for (const resource of [tenantResource, ...TENANT_CHILD_RESOURCES]) {
    router.get(`/api/v1/${resource.path}`, minPosition.header, list(resource));
    router.get(`/api/v1/${resource.path}/:id`, minPosition.header, get(resource));
  }

  const tenantIdParam = (req: Request): string => {
    const id = resourceId.safeParse(req.params['id']);
    if (!id.success) {
      throw new ApiError(404, 'not_found', 'tenant not found', [{ field: 'id', issue: 'must be a uuid' }]);
    }
    return id.data;
  };
  router.get('/api/v1/tenants/:id/domains', minPosition.header, async (req, res) => {
    parseQuery(z.strictObject({}), req.query);
    const tenantId = tenantIdParam(req);
    await minPosition.caughtUp(req, res, async () => ({ tenant: tenantId, required: 'read' }));
    await requireTenantAccess(req, res, tenantId, 'read', 'id');
    res.setHeader('Cache-Control', 'private, no-cache');
    res.json({ data: await listCustomDomains(pool, tenantId), next_cursor: null });
  });
  router.get('/api/v1/tenants/:id/domains/:domain', minPosition.header, async (req, res) => {
    parseQuery(z.strictObject({}), req.query);
    const tenantId = tenantIdParam(req);
    await minPosition.caughtUp(req, res, async () => ({ tenant: tenantId, required: 'read' }));
    await requireTenantAccess(req, res, tenantId, 'read', 'id');
    const found = await getCustomDomain(pool, tenantId, domainParam(String(req.params['domain'])));
    if (!found) throw notFound('custom domain', 'domain');
    res.setHeader('ETag', `"${found.revision}"`);
    res.setHeader('Cache-Control', 'private, no-cache');
    res.json(found.resource);
  });

  router.get('/api/v1/usage', async (req, res) => {
    const query = parseQuery(usageQuery, req.query);
    let tenantId = query.tenant_id;
    if (query.api_key_id !== undefined) {
      const key = await getResource(pool, apiKeyResource, query.api_key_id);
      const keyTenant = key?.tenant_id;
      // A key of another (or an invisible) tenant is a key that does not exist: the same answer, so
      // that a caller cannot tell another tenant's key ids from unknown ones.
      const visible =
        keyTenant !== undefined &&
        (tenantId === undefined || keyTenant === tenantId) &&
        (await authorizer.access(callerOf(res), keyTenant)) !== 'none';
      if (!visible) {
        throw new ApiError(404, 'not_found', 'api key not found', [
          { field: 'api_key_id', issue: 'no such key' },
        ]);
      }
      tenantId = keyTenant;
    }
    const access = await requireTenantAccess(req, res, tenantId as string, 'read');
    const window = usageWindow(query, (deps.clock ?? Date.now)());
    if ('issue' in window) throw validationFailed([{ field: window.field, issue: window.issue }]);
    const done = usageReads.enter(tenantId as string, access);
    try {
      const report = await readUsage(deps.pool, tenantId as string, query, window, usageTimeoutMs);
      res.setHeader('Cache-Control', 'private, no-cache');
      res.json(report);
    } catch (error) {
      if (!(error instanceof UsageTooExpensiveError)) throw error;
      throw new ApiError(422, 'limit_exceeded', 'the usage asked for is too much to read in one request', [
        {
          field: 'from',
          issue: `the range holds more counts than one request reads within ${error.timeoutMs} ms (USAGE_QUERY_TIMEOUT_MS): ask for a shorter range, or filter by route_id, api_key_id or user_id`,
        },
      ]);
    } finally {
      done();
    }
  });

  router.get('/api/v1/audit-log', minPosition.header, async (req, res) => {
    const query = parseQuery(auditLogQuery, req.query);
    let tenantIds: string[] | null;
    if (query.tenant_id !== undefined) {
      const tenant = query.tenant_id;
      await minPosition.caughtUp(req, res, async () => ({ tenant, required: 'write' }));
      // Platform admins read the log of any tenant, deleted ones too: asked only so the read counts as
      // one on the tenant (its requests in flight).
      if (callerOf(res).isPlatformAdmin) await authorizer.access(callerOf(res), tenant);
      else await requireTenantAccess(req, res, tenant, 'write');
      tenantIds = [tenant];
    } else {
      await minPosition.caughtUp(req, res, async () => ({ anyTenant: 'write' }));
      tenantIds = await visibleTenantIds({ pool, authorizer, directory }, callerOf(res), 'write');
    }
    // Entries are up to a route's 32 KiB each, a page up to 200 of them: each tenant's are paid from
    // its config read budget, so one admin's pages cannot keep the process's one thread busy.
    const budget = deps.eventStore ? configReadBudgetOf(deps.eventStore) : undefined;
    let omitted: OmittedTenant[] = [];
    if (budget && tenantIds !== null) {
      if (query.tenant_id !== undefined) budget.admit(query.tenant_id);
      else ({ admitted: tenantIds, omitted } = admitListedTenants(budget, tenantIds));
    }
    const rows =
      tenantIds !== null && tenantIds.length === 0 ? [] : await listAuditEntries(pool, query, tenantIds);
    const page = toPage(rows, query.limit, auditKey, presentAuditEntry);
    // A platform admin's listing of every tenant spends no tenant's budget.
    if (budget && tenantIds !== null) spendByTenant(budget, page.data);
    res.json(omitted.length === 0 ? page : { ...page, omitted_tenants: omitted });
  });

  // Rebuilds a lost snapshot topic: every tenant's snapshot is queued for the snapshot projector.
  router.post('/api/v1/admin/republish-snapshots', (_req, res, next) => {
    if (!callerOf(res).isPlatformAdmin)
      throw forbidden('only platform admins may republish the gateway snapshots');
    requestSnapshotRepublish(deps.pool).then(
      ({ tenants }) => res.status(202).json({ republish: { queued_tenants: tenants } }),
      next,
    );
  });

  if (deps.eventStore) {
    // A tenant's config at any position is folded from the event store.
    router.use(
      createConfigQueryRouter({
        pool,
        store: deps.eventStore,
        authorizer,
        minPosition,
        maxEventsRead: maxEventsReadOf(deps.configReadMaxEvents),
        // The event store's reads of a config too (0: none).
        readTimeoutMs: readTimeoutMs === 0 ? undefined : readTimeoutMs,
      }),
    );
    const replays = new ReplayRunner(deps.eventStore, deps.pool, deps.onReplayError);
    const platformAdminOnly: RequestHandler = (_req, res, next) => {
      if (!callerOf(res).isPlatformAdmin) throw forbidden('only platform admins may replay the read models');
      next();
    };
    router.post('/api/v1/admin/replay', platformAdminOnly, async (_req, res) => {
      const result = await replays.start();
      if (!result.started)
        throw new ApiError(409, 'conflict', 'a replay of the read models is already running');
      res.status(202).setHeader('Location', '/api/v1/admin/replay').json({ replay: result.status });
    });
    router.get('/api/v1/admin/replay', platformAdminOnly, (_req, res) => {
      res.json({ replay: replays.status() });
    });
  }

  return router;
}

/** Each entry's JSON bytes taken from its tenant's config read budget (entries of no tenant: none). */
function spendByTenant(budget: ConfigReadBudget, entries: readonly Record<string, unknown>[]): void {
  const byTenant = new Map<string, Record<string, unknown>[]>();
  for (const entry of entries) {
    const tenant = entry['tenant_id'];
    if (typeof tenant !== 'string') continue;
    const list = byTenant.get(tenant) ?? [];
    list.push(entry);
    byTenant.set(tenant, list);
  }
  for (const [tenant, list] of byTenant) budget.spend(tenant, list);
}
