import { readReadModelsPosition } from '@vantageedge/projections/read-models/position';
import type { EventStore } from '@vantageedge/shared/event-store/port';
import type { Request, RequestHandler, Response } from 'express';
import type pg from 'pg';
import type { Authorizer } from '../auth/authorize.js';
import type { Caller, TenantDirectory } from '../auth/caller.js';
import { callerOf } from '../auth/caller-middleware.js';
import { createEventLogTenantDirectory } from '../commands/tenant-directory.js';
import { ApiError, validationFailed } from '../http/errors.js';
import { HEADER_FORMATS } from '../http/header-formats.js';
import { tenantsOfUser } from './read-model-store.js';
import { allows, type RequiredAccess } from './visibility.js';

export const MIN_POSITION_HEADER = 'x-min-position';

export interface MinPositionOptions {
  /** How long a query waits for the projector to reach the requested position. */
  maxWaitMs: number;
  pollIntervalMs: number;
}

/** X-Min-Position as an event position; undefined when absent; 400 naming the header when malformed. */
export function minPositionOf(req: Request): bigint | undefined {
  const header = req.get(MIN_POSITION_HEADER);
  if (header === undefined) return undefined;
  if (!HEADER_FORMATS.minPosition.test(header)) {
    throw validationFailed([
      { field: 'X-Min-Position', issue: 'must be an event position (a non-negative integer)' },
    ]);
  }
  return BigInt(header);
}

/**
 * Read-your-writes: a command answers with the position of its events; a client sending that as
 * `X-Min-Position` gets a read model that includes them. The query waits briefly for the projector's
 * checkpoint, then gives up with 503 `not_caught_up` and `Retry-After` rather than answer stale.
 *
 * Only callers with access to what the endpoint serves wait, and only when the read models are behind
 * the position. That access is the event log's, as commands decide it (the read models are behind,
 * so they may not yet show the tenant a caller just wrote to), or the read models'. A caller without
 * access gets the answer it gets without the header (404, 403, an empty list), at once and with no
 * position in it: it cannot make requests hold the database, nor read how far the platform's log is.
 * The grant that lets a request wait is the endpoint's own (its authorizers count the request on the
 * tenant's requests in flight), so a tenant's waiting requests hold its places like its running
 * ones: past them a wait is refused 429 at once. Then:
 * - a position beyond the newest event is 400 naming the header (nothing would ever reach it), as
 *   `at_position` is;
 * - the waiting requests share one poll of the checkpoint, whatever their number.
 * Platform admins may see every tenant: they always wait (on the tenant's places when one is named).
 */
export interface ReadYourWrites {
  /** Route middleware: 400 for a malformed X-Min-Position before anything else (no query). */
  header: RequestHandler;
  /**
   * Waits until the read models include X-Min-Position, when they do not yet and the caller has the
   * access `scope` (asked only then) names. The endpoint then reads, and authorizes as always, from
   * the read models.
   */
  caughtUp(req: Request, res: Response, scope: () => Promise<WaitScope>): Promise<void>;
}

/** Whose read-your-writes an endpoint serves. */
export type WaitScope =
  /** One tenant's: callers with `required` access to it. */
  | { tenant: string; required: RequiredAccess }
  /** A list of the caller's tenants' resources, or one not in the read models yet (it may be the
   * caller's fresh write): callers with `required` access to any tenant. */
  | { anyTenant: RequiredAccess }
  /**
   * One resource by id, of tenant `resourceOf` in the read models: callers with `required` access to
   * that tenant. To anyone else it is what an id the read models do not hold is (it may be their own
   * fresh write): callers with `required` access to any tenant wait, so that whether a request waits
   * never tells them that another tenant has the id.
   */
  | { resourceOf: string; required: RequiredAccess }
  /** Nobody's (e.g. a malformed id: the answer does not depend on the read models). */
  | null;

export function readYourWrites(
  deps: {
    pool: pg.Pool;
    /** The event log: the newest position, and the tenant of a Clerk org as it is now. */
    store: EventStore | undefined;
    /** The read models' directory: the tenant of a Clerk org as they say it. */
    directory: TenantDirectory;
    /**
     * Access as the event log says it now and as the read models say it (either grants the wait: the
     * endpoint still authorizes from the read models once they include the position). The endpoints'
     * own authorizers, counting the request on the tenant each grants.
     */
    authorizers: readonly Authorizer[];
  },
  options: MinPositionOptions,
): ReadYourWrites {
  const { pool, store, authorizers } = deps;
  const watch = new CheckpointWatch(pool, options.pollIntervalMs);
  const directories = store ? [createEventLogTenantDirectory(store), deps.directory] : [deps.directory];

  async function hasAccess(caller: Caller, tenantId: string, required: RequiredAccess): Promise<boolean> {
    for (const authorizer of authorizers) {
      if (allows(await authorizer.access(caller, tenantId, undefined, required), required)) return true;
    }
    return false;
  }

  async function mayWait(caller: Caller, scope: WaitScope): Promise<boolean> {
    if (scope !== null && 'tenant' in scope) return hasAccess(caller, scope.tenant, scope.required);
    if (scope !== null && 'resourceOf' in scope) {
      if (await hasAccess(caller, scope.resourceOf, scope.required)) return true;
      return mayWait(caller, { anyTenant: scope.required });
    }
    if (caller.isPlatformAdmin) return true;
    if (scope === null) return false;
    // The tenants listing the caller as a user, and the tenant of the caller's Clerk org.
    const candidates = new Set(await tenantsOfUser(pool, caller.userId));
    if (caller.orgId !== null) {
      for (const directory of directories) {
        const orgTenant = await directory.tenantIdForOrg(caller.orgId);
        if (orgTenant !== null) candidates.add(orgTenant);
      }
    }
    for (const tenantId of candidates) {
      if (await hasAccess(caller, tenantId, scope.anyTenant)) return true;
    }
    return false;
  }

  return {
    header: (req, _res, next) => {
      minPositionOf(req);
      next();
    },
    async caughtUp(req, res, scope) {
      const wanted = minPositionOf(req);
      if (wanted === undefined || (await readReadModelsPosition(pool)) >= wanted) return;
      if (!(await mayWait(callerOf(res), await scope()))) return;
      if (store) {
        const head = await store.headPosition();
        if (wanted > head) {
          throw validationFailed([
            { field: 'X-Min-Position', issue: `is beyond the newest event position (${head})` },
          ]);
        }
      }
      const { reached, position } = await watch.reach(wanted, Date.now() + options.maxWaitMs);
      if (!reached) {
        throw new ApiError(
          503,
          'not_caught_up',
          `the read models are at position ${position}, not yet at ${wanted}; retry shortly`,
          [{ field: 'X-Min-Position', issue: `read models are at position ${position}` }],
          { 'Retry-After': '1' },
        );
      }
    },
  };
}

interface Waiter {
  wanted: bigint;
  deadline: number;
  resolve: (outcome: { reached: boolean; position: bigint }) => void;
  reject: (error: unknown) => void;
}

/**
 * One poll of the read models' checkpoint for every waiting request: a query per interval while
 * anyone waits, none otherwise. Each waiter leaves when the checkpoint reaches its position or at its
 * deadline; a failed read fails every waiter (the request answers 500/503 as any query would).
 */
class CheckpointWatch {
  private readonly waiters = new Set<Waiter>();
  private polling = false;

  constructor(
    private readonly pool: pg.Pool,
    private readonly intervalMs: number,
  ) {}

  reach(wanted: bigint, deadline: number): Promise<{ reached: boolean; position: bigint }> {
    return new Promise((resolve, reject) => {
      this.waiters.add({ wanted, deadline, resolve, reject });
      if (!this.polling) {
        this.polling = true;
        void this.poll();
      }
    });
  }

  private async poll(): Promise<void> {
    try {
      while (this.waiters.size > 0) {
        await new Promise((resolve) => setTimeout(resolve, this.intervalMs));
        let position: bigint;
        try {
          position = await readReadModelsPosition(this.pool);
        } catch (error) {
          for (const waiter of this.waiters) waiter.reject(error);
          this.waiters.clear();
          return;
        }
        const now = Date.now();
        for (const waiter of this.waiters) {
          if (position >= waiter.wanted || now >= waiter.deadline) {
            this.waiters.delete(waiter);
            waiter.resolve({ reached: position >= waiter.wanted, position });
          }
        }
      }
    } finally {
      // No await between the loop's last check and here: a waiter added later starts a new poll.
      this.polling = false;
    }
  }
}
