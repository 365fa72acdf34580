import { uuidId } from '@vantageedge/shared/domain/uuid-id';
import type { EventStore } from '@vantageedge/shared/event-store/port';
import { entityTagListMatches } from '@vantageedge/shared/http/entity-tags';
import type express from 'express';
import type { Request, Response } from 'express';
import type pg from 'pg';
import { z } from 'zod';
import type { Authorizer } from '../auth/authorize.js';
import { callerOf } from '../auth/caller-middleware.js';
import { diffConfigs } from '../config-history/config-diff.js';
import { documentOf } from '../config-history/config-document-of.js';
import { readConfigHistory } from '../config-history/config-history.js';
import { configReadBudgetOf } from '../config-history/config-read-budget.js';
import { redactedChanges, redactedConfig } from '../config-history/redact-credentials.js';
import { asSeenWith } from '../config-history/redact-match-values.js';
import { type TenantConfig, tenantConfigAt } from '../config-history/tenant-config.js';
import type { TenantEventSource } from '../config-history/tenant-events.js';
import { ApiError, forbidden, validationFailed } from '../http/errors.js';
import { exactRouter } from '../http/exact-routing.js';
import type { ReadYourWrites, WaitScope } from './min-position.js';
import { cursorParam, limitParam, toPage } from './pagination.js';
import { tenantExists } from './read-model-store.js';
import { parseQuery } from './request-validation.js';
import { selectTagsParam } from './tag-filter.js';
import { allows, type RequiredAccess } from './visibility.js';

/**
 * A tenant's gateway config at any event position, as JSON or as a document, the diff between two
 * positions, and its history. Configs are folded from the event store itself (never from the read
 * models), so they are exact at every position; the history comes from the audit log.
 */

export interface ConfigQueryDeps {
  pool: pg.Pool;
  store: EventStore;
  authorizer: Authorizer;
  /** The query router's X-Min-Position waits (one poll shared by both). */
  minPosition: ReadYourWrites;
  /** Events of the log one config read may read (TenantEventSource); default: no limit. */
  maxEventsRead?: number | undefined;
  /** How long each event-store read of a config read may run (TenantEventSource); default: no limit. */
  readTimeoutMs?: number | undefined;
}

export const positionParam = z
  .string()
  .regex(/^\d{1,19}$/, 'must be an event position (a non-negative integer)')
  .transform((value) => BigInt(value));

const atQuery = z.strictObject({ at_position: positionParam.optional() });
const documentQuery = atQuery.extend({ select_tags: selectTagsParam });
const diffQuery = z.strictObject({ from: positionParam, to: positionParam.optional() });
const historyQuery = z.strictObject({ limit: limitParam, cursor: cursorParam });
const tenantIdParam = uuidId();

/**
 * The config as the API shows it: the snapshot (minus key hashes, credential header and query
 * parameter values `<redacted>`) and the position it was asked at.
 */
export function presentConfig(config: TenantConfig, position: bigint) {
  return { position: position.toString(), ...redactedConfig(config) };
}

/**
 * The tenant of the path, visible to the caller with `required` access (else 404, or 403 when it is
 * visible but the access is not enough), and the caller's access to it: how every config endpoint
 * authorizes.
 */
export async function visibleTenantOf(
  deps: Pick<ConfigQueryDeps, 'pool' | 'authorizer'>,
  req: Request,
  res: Response,
  required: RequiredAccess,
): Promise<{ tenantId: string; access: RequiredAccess }> {
  const id = tenantIdParam.safeParse(req.params['id']);
  const tenantId = id.success ? id.data : null;
  const access =
    tenantId !== null && (await tenantExists(deps.pool, tenantId))
      ? await deps.authorizer.access(callerOf(res), tenantId)
      : 'none';
  if (tenantId === null || access === 'none') {
    throw new ApiError(404, 'not_found', 'tenant not found', [{ field: 'id', issue: 'no such tenant' }]);
  }
  if (!allows(access, required)) throw forbidden(`this needs ${required} access to the tenant`);
  return { tenantId, access };
}

/** X-Min-Position's wait scope of an endpoint on the tenant its path names (none for a malformed id). */
export function pathTenantScope(req: Request, required: RequiredAccess): WaitScope {
  const id = tenantIdParam.safeParse(req.params['id']);
  return id.success ? { tenant: id.data, required } : null;
}

/** A position no later than the newest event (default: the newest); later → 400 naming `field`. */
export async function positionNoLaterThanHead(
  store: EventStore,
  requested: bigint | undefined,
  field: string,
): Promise<bigint> {
  const head = await store.headPosition();
  if (requested === undefined) return head;
  if (requested > head) {
    throw validationFailed([{ field, issue: `is beyond the newest event position (${head})` }]);
  }
  return requested;
}

export function createConfigQueryRouter(deps: ConfigQueryDeps): express.Router {
  const router = exactRouter();
  const { minPosition } = deps;

  /** The tenant of the path, visible to the caller, once the read models include X-Min-Position. */
  const tenantOf = async (req: Request, res: Response, required: RequiredAccess) => {
    await minPosition.caughtUp(req, res, async () => pathTenantScope(req, required));
    return visibleTenantOf(deps, req, res, required);
  };
  /**
   * The tenant's config read budget as the caller reads from it (readers have buckets of their own): a
   * whole-config read is refused while the caller's bucket is in debt, before any fold.
   */
  const budgetOf = (access: RequiredAccess) => configReadBudgetOf(deps.store, access);
  const resolvePosition = (requested: bigint | undefined, field: string) =>
    positionNoLaterThanHead(deps.store, requested, field);

  // Admin reads: what they fold is charged to the tenant's config read budget.
  const history: TenantEventSource = {
    store: deps.store,
    pool: deps.pool,
    maxEventsRead: deps.maxEventsRead,
    readTimeoutMs: deps.readTimeoutMs,
    chargedToReadBudget: true,
  };
  const readersHistory: TenantEventSource = { ...history, chargedToReaders: true };

  async function configAt(
    tenantId: string,
    access: RequiredAccess,
    position: bigint,
    field: string,
  ): Promise<TenantConfig> {
    const at = await tenantConfigAt(access === 'write' ? history : readersHistory, tenantId, position);
    if (at.status === 'live') return at.config;
    const issue =
      at.status === 'absent'
        ? `the tenant did not exist yet at position ${position}`
        : `the tenant was deleted at position ${at.version}`;
    throw new ApiError(404, 'not_found', `the tenant had no config at position ${position}`, [
      { field, issue },
    ]);
  }

  /**
   * A reader's copy (match values <redacted>) is another representation than a writer's: another tag,
   * so neither is ever revalidated (304) as the other, by a browser or a cache keyed by URL alone.
   * If-None-Match is compared as a route's GET compares it, whatever the request's Cache-Control.
   */
  function sendVersioned(
    req: Request,
    res: Response,
    access: RequiredAccess,
    config: TenantConfig,
    body: unknown,
  ): void {
    const etag = access === 'write' ? `"${config.version}"` : `"${config.version}-redacted"`;
    res.setHeader('ETag', etag);
    res.setHeader('Cache-Control', 'private, no-cache');
    const ifNoneMatch = req.get('if-none-match');
    if (ifNoneMatch !== undefined && entityTagListMatches(ifNoneMatch, etag)) {
      res.status(304).end();
      return;
    }
    res.json(body);
  }

  router.get('/api/v1/tenants/:id/config', minPosition.header, async (req, res) => {
    const query = parseQuery(atQuery, req.query);
    const { tenantId, access } = await tenantOf(req, res, 'read');
    budgetOf(access).admit(tenantId);
    const position = await resolvePosition(query.at_position, 'at_position');
    const config = await configAt(tenantId, access, position, 'at_position');
    budgetOf(access).spend(tenantId, [config]);
    sendVersioned(req, res, access, config, asSeenWith(access, presentConfig(config, position)));
  });

  router.get('/api/v1/tenants/:id/config/document', minPosition.header, async (req, res) => {
    const query = parseQuery(documentQuery, req.query);
    const { tenantId, access } = await tenantOf(req, res, 'read');
    budgetOf(access).admit(tenantId);
    const position = await resolvePosition(query.at_position, 'at_position');
    const config = await configAt(tenantId, access, position, 'at_position');
    budgetOf(access).spend(tenantId, [config]);
    sendVersioned(req, res, access, config, {
      tenant_id: tenantId,
      position: position.toString(),
      version: config.version,
      // Credential header and query parameter values as <redacted>: applied back, the placeholder keeps
      // the stored value.
      document: documentOf(asSeenWith(access, redactedConfig(config)), {
        selectTags: query.select_tags ?? [],
      }),
    });
  });

  router.get('/api/v1/tenants/:id/config/diff', minPosition.header, async (req, res) => {
    const query = parseQuery(diffQuery, req.query);
    const { tenantId, access } = await tenantOf(req, res, 'read');
    budgetOf(access).admit(tenantId);
    const from = await resolvePosition(query.from, 'from');
    const to = await resolvePosition(query.to, 'to');
    // One after the other: a request holds one pooled connection at a time (tenant-events.ts).
    const before = await configAt(tenantId, access, from, 'from');
    const after = await configAt(tenantId, access, to, 'to');
    budgetOf(access).spend(tenantId, [before, after]);
    res.setHeader('Cache-Control', 'private, no-cache');
    res.json({
      tenant_id: tenantId,
      from: { position: from.toString(), version: before.version },
      to: { position: to.toString(), version: after.version },
      changes: asSeenWith(access, redactedChanges(diffConfigs(before, after))),
    });
  });

  // Who changed what: as the audit log, for tenant writers (owners, admins) and platform admins.
  router.get('/api/v1/tenants/:id/config/history', minPosition.header, async (req, res) => {
    const query = parseQuery(historyQuery, req.query);
    const { tenantId } = await tenantOf(req, res, 'write');
    const rows = await readConfigHistory(deps.pool, tenantId, { before: query.cursor, limit: query.limit });
    res.json(
      toPage(
        rows,
        query.limit,
        (row) => row.key,
        ({ key: _, ...entry }) => entry,
      ),
    );
  });

  return router;
}
