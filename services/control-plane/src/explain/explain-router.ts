import type { RequestExplanation } from '@vantageedge/shared/domain/request-explanation';
import type { EventStore } from '@vantageedge/shared/event-store/port';
import { headersAsNodeGivesThem, sentHeader } from '@vantageedge/shared/http/header-values';
import type express from 'express';
import type pg from 'pg';
import { z } from 'zod';
import type { Authorizer } from '../auth/authorize.js';
import { asSeenWith } from '../config-history/redact-match-values.js';
import { ApiError, validationFailed } from '../http/errors.js';
import { exactRouter } from '../http/exact-routing.js';
import { parseBody } from '../http/validation.js';
import { pathTenantScope, positionNoLaterThanHead, visibleTenantOf } from '../queries/config-router.js';
import type { ReadYourWrites } from '../queries/min-position.js';
import { parseQuery } from '../queries/request-validation.js';
import { explainBody } from '../schemas/explain.js';
import type { QuotaCounters } from './explain-quota.js';
import { explainRequest } from './explain-request.js';
import { explainSnapshotAt } from './explain-source.js';
import { formerKeysOf } from './former-keys.js';

/**
 * POST /api/v1/tenants/:id/explain: what the gateways would do with a request, at the config the
 * tenant has now or had after an event position. A read: it appends nothing, and needs the access
 * reading the tenant's config needs.
 */

export interface ExplainDeps {
  store: EventStore;
  pool: pg.Pool;
  authorizer: Authorizer;
  /**
   * X-Min-Position: explain finds the tenant and the caller's access in the read models, so a caller
   * explaining right after its write (a new tenant, a new membership) waits for them as the queries do.
   */
  minPosition: ReadYourWrites;
  apiKeyPepper: string;
  /** PLATFORM_BASE_DOMAINS, as the gateways resolve hosts. */
  baseDomains: readonly string[];
  /** GATEWAY_ENCODED_SLASHES of the gateways (default reject, the gateway's default). */
  encodedSlashes?: 'reject' | 'keep';
  clock?: () => Date;
  /** The gateways' quota counters (their Redis): what is left of a quota is read there, never spent. */
  quotaCounters?: QuotaCounters | undefined;
  /** Events of the log one explain's fold may read (TenantEventSource); default: no limit. */
  maxEventsRead?: number | undefined;
  /** How long each event-store read of an explain's fold may run (TenantEventSource); default: no limit. */
  readTimeoutMs?: number | undefined;
  /** CLERK_JWT_KEY and its checks: Clerk session tokens are then verified here, networklessly. */
  clerk?:
    | { jwtKey: string; authorizedParties: readonly string[]; issuer: string; allowDevTokens: boolean }
    | undefined;
}

/** The Authenticator's default longest service-token lifetime (seconds). */
const MAX_SERVICE_TOKEN_SECONDS = 300;

export function createExplainRouter(deps: ExplainDeps): express.Router {
  const router = exactRouter();
  const baseDomains = deps.baseDomains.map((domain) => domain.toLowerCase());
  const clock = deps.clock ?? (() => new Date());

  router.post('/api/v1/tenants/:id/explain', deps.minPosition.header, async (req, res) => {
    // Everything explain reads is in the body: `?at_position=` there would be ignored, not obeyed.
    parseQuery(z.strictObject({}), req.query);
    await deps.minPosition.caughtUp(req, res, async () => pathTenantScope(req, 'read'));
    const { tenantId, access } = await visibleTenantOf(deps, req, res, 'read');
    const body = parseBody(explainBody, req.body);
    const queryAt = body.path.indexOf('?');
    if (queryAt >= 0 && body.query !== undefined) {
      throw validationFailed([
        { field: 'query', issue: 'give the query string in path or in query, not both' },
      ]);
    }
    const path = queryAt < 0 ? body.path : body.path.slice(0, queryAt);
    const query = queryAt < 0 ? (body.query ?? '').replace(/^\?/, '') : body.path.slice(queryAt + 1);
    // Read as a gateway's node:http gives them: repeated lines joined, or only the first kept.
    const headers = headersAsNodeGivesThem(
      Object.entries(body.headers ?? {}).flatMap(([name, value]) =>
        (typeof value === 'string' ? [value] : value).map((line) => [name, line] as const),
      ),
    );
    if (sentHeader(headers, 'host') !== undefined) {
      throw validationFailed([{ field: 'headers.host', issue: 'give the host in host, not as a header' }]);
    }

    const position = await positionNoLaterThanHead(deps.store, body.at_position, 'at_position');
    const at = await explainSnapshotAt(deps, tenantId, position, access);
    if (at.status !== 'live') {
      const issue =
        at.status === 'absent'
          ? `the tenant did not exist yet at position ${position}`
          : `the tenant was deleted at position ${at.version}`;
      throw new ApiError(404, 'not_found', `the tenant had no config at position ${position}`, [
        { field: 'at_position', issue },
      ]);
    }
    const explanation = await explainRequest(
      at.snapshot,
      {
        method: body.method,
        host: body.host,
        path,
        query,
        headers,
        ...(body.client_ip !== undefined ? { clientIp: body.client_ip } : {}),
        ...(body.scheme !== undefined ? { scheme: body.scheme } : {}),
      },
      {
        snapshot: at.snapshot,
        formerKeys: formerKeysOf(deps.pool, tenantId, position),
        apiKeyPepper: deps.apiKeyPepper,
        baseDomains,
        encodedSlashes: deps.encodedSlashes ?? 'reject',
        quotaCounters: deps.quotaCounters && {
          // An injected clock (tests) is the counters' too; else theirs (Redis's) says which period is now.
          ...(deps.clock ? { clock: () => clock().getTime() } : {}),
          ...deps.quotaCounters,
          atNow: body.at_time === undefined,
        },
        maxServiceTokenSeconds: MAX_SERVICE_TOKEN_SECONDS,
        clerk: deps.clerk,
        now: body.at_time !== undefined ? new Date(body.at_time) : clock(),
      },
    );
    const answer: RequestExplanation = {
      tenant_id: tenantId,
      position: position.toString(),
      version: at.snapshot.version,
      ...explanation,
    };
    res.setHeader('Cache-Control', 'private, no-store');
    res.json(asSeenWith(access, answer));
  });

  return router;
}
