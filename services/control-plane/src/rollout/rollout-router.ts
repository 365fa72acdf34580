import type express from 'express';
import type { Request, Response } from 'express';
import { z } from 'zod';
import type { Authorizer } from '../auth/authorize.js';
import { callerOf } from '../auth/caller-middleware.js';
import { ApiError, validationFailed } from '../http/errors.js';
import { exactRouter } from '../http/exact-routing.js';
import { parseQuery } from '../queries/request-validation.js';
import { parseWaitForRollout } from './parse-wait.js';
import { type RolloutDeps, readRolloutStatus, waitForRollout } from './rollout-status.js';

export type RolloutRouterDeps = RolloutDeps & {
  authorizer: Authorizer;
  /**
   * Whether a tenant was ever created (from the event log): a wait for an unknown tenant is a 404 at
   * once, not after the whole wait.
   */
  tenantKnown?: (tenantId: string) => Promise<boolean>;
  /** The event log's newest position: min_position beyond it waits for everything up to now. */
  headPosition?: () => Promise<bigint>;
  /** Why a status could not be read (a driver's message names hosts, ports and users): for the log only. */
  onUnreadable?: (reason: unknown) => void;
};

/** The heartbeats (Redis) or the snapshot state (PostgreSQL) could not be read: try again shortly. */
function rolloutUnavailable(): ApiError {
  return new ApiError(
    503,
    'rollout_status_unavailable',
    'rollout status cannot be read now (its stores are unreachable); try again shortly',
    [],
    { 'Retry-After': '1' },
  );
}

/** The parameters this endpoint knows (their values are checked below); any other is a 400 naming it. */
const rolloutQuery = z.strictObject({
  wait_for_rollout: z.unknown().optional(),
  min_position: z.unknown().optional(),
});

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const POSITION = /^\d{1,19}$/;

/**
 * GET /api/v1/tenants/:id/rollout — which gateway replicas serve which snapshot version of a tenant.
 *   ?wait_for_rollout=5s  wait until every live replica has it: 200 when it is, 202 with the status
 *                         when the time runs out.
 *   ?min_position=N       (with wait) the change to wait for: a command's event position.
 * Mount behind the caller middleware: `app.use(createRolloutRouter(deps))`. Needs read access;
 * a tenant the caller cannot see is 404, as elsewhere in the admin API.
 */
export function createRolloutRouter(deps: RolloutRouterDeps): express.Router {
  const router = exactRouter();
  const unavailable = (reason: unknown): ApiError => {
    deps.onUnreadable?.(reason);
    return rolloutUnavailable();
  };

  router.get('/api/v1/tenants/:id/rollout', async (req: Request, res: Response) => {
    const id = String(req.params['id']);
    if (!UUID.test(id)) throw validationFailed([{ field: 'id', issue: 'must be a tenant id (uuid)' }]);
    // Its one spelling: the heartbeats, the event log and the tenant's request places know it by it.
    const tenantId = id.toLowerCase();
    parseQuery(rolloutQuery, req.query);
    let waitMs: number | undefined;
    if (req.query['wait_for_rollout'] !== undefined) {
      const parsed = parseWaitForRollout(req.query['wait_for_rollout']);
      if (!parsed.ok) throw validationFailed([{ field: 'wait_for_rollout', issue: parsed.issue }]);
      waitMs = parsed.ms;
    }
    let minPosition: bigint | undefined;
    const minPositionText = req.query['min_position'];
    if (minPositionText !== undefined) {
      if (typeof minPositionText !== 'string' || !POSITION.test(minPositionText)) {
        throw validationFailed([
          { field: 'min_position', issue: 'must be an event position (a non-negative integer)' },
        ]);
      }
      minPosition = BigInt(minPositionText);
    }

    const access = await deps.authorizer.access(callerOf(res), tenantId);
    const notFound = () =>
      new ApiError(404, 'not_found', 'tenant not found', [{ field: 'id', issue: 'no such tenant' }]);
    if (access === 'none' || (deps.tenantKnown && !(await deps.tenantKnown(tenantId)))) throw notFound();
    if (minPosition !== undefined && deps.headPosition) {
      // No change lies beyond the newest event: waiting for one would only run the clock out.
      const head = await deps.headPosition();
      if (minPosition > head) minPosition = head;
    }

    if (waitMs === undefined) {
      const status = await readRolloutStatus(deps, tenantId).catch((error: unknown) => {
        throw unavailable(error);
      });
      if (!status) throw notFound();
      res.status(200).json(status);
      return;
    }
    const result = await waitForRollout(deps, {
      tenantId,
      timeoutMs: waitMs,
      ...(minPosition !== undefined ? { minPosition } : {}),
    });
    if (!result.status && result.unreadable) throw unavailable(result.unreadable);
    if (!result.status) throw notFound();
    res.status(result.done ? 200 : 202).json(result.status);
  });

  return router;
}
