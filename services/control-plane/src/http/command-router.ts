import { randomUUID } from 'node:crypto';
import { StoreUnavailableError } from '@vantageedge/shared/postgres/lost-connections';
import type express from 'express';
import type { Request, RequestHandler, Response } from 'express';
import { z } from 'zod';
import type { TenantAccess } from '../auth/caller.js';
import { callerOf } from '../auth/caller-middleware.js';
import { issueApiKey, revokeApiKey, rotateApiKey, updateApiKey } from '../commands/api-key-commands.js';
import { purgeRouteCache, purgeTenantCache, purgeTenantCacheBody } from '../commands/cache-commands.js';
import {
  deleteCertificate,
  resealCertificateKey,
  uploadCertificate,
} from '../commands/certificate-commands.js';
import {
  admitDocument,
  applyTenantConfig,
  planTenantConfig,
  rollbackTenantConfig,
} from '../commands/config-commands.js';
import {
  authorizeReplay,
  type CommandBudget,
  type CommandContext,
  type CommandDeps,
  type CommandOutcome,
  type ReplayGuard,
  requireAccess,
  unknownTenantOfPath,
} from '../commands/context.js';
import {
  createCustomDomain,
  deleteCustomDomain,
  domainParam,
  verifyCustomDomain,
} from '../commands/custom-domain-commands.js';
import { createOrigin, deleteOrigin, updateOrigin } from '../commands/origin-commands.js';
import { createRoute, deleteRoute, updateRoute } from '../commands/route-commands.js';
import { createTenant, deleteTenant, updateTenant } from '../commands/tenant-commands.js';
import { changeUserRole, createUser, deleteUser } from '../commands/user-commands.js';
import { configReadBudgetOf } from '../config-history/config-read-budget.js';
import type { TenantConfigs } from '../config-history/tenant-config.js';
import { parseQuery } from '../queries/request-validation.js';
import { parseWaitForRollout } from '../rollout/parse-wait.js';
import { type RolloutDeps, waitForRollout } from '../rollout/rollout-status.js';
import { configDocument, rollbackBody } from '../schemas/config-document.js';
import {
  createApiKeyBody,
  createCustomDomainBody,
  createOriginBody,
  createRouteBody,
  createTenantBody,
  createUserBody,
  revokeApiKeyBody,
  rotateApiKeyBody,
  updateApiKeyBody,
  updateOriginBody,
  updateRouteBody,
  updateTenantBody,
  updateUserBody,
  uploadCertificateBody,
} from '../schemas/requests.js';
import type { CustomDomainResource } from '../schemas/resources.js';
import { ApiError, toApiError, validationFailed } from './errors.js';
import { exactRouter } from './exact-routing.js';
import { IdempotencyStore, requestHash, type StoredResponse, supersededAttempt } from './idempotency.js';
import { etag, ifMatchRevisions } from './preconditions.js';
import { parseBody } from './validation.js';

export interface CommandRouterDeps extends CommandDeps {
  idempotency: IdempotencyStore;
  /** Counts commands by name and outcome (metrics). */
  onCommand?: (command: string, outcome: string) => void;
  /** Gateway rollout status (Redis heartbeats); enables `?wait_for_rollout=` on commands. */
  rollout?: RolloutDeps | undefined;
  /** A tenant's config at any position: enables the config plan, apply and rollback commands. */
  tenantConfigs?: TenantConfigs | undefined;
  /** A new tenant command budget (the per-tenant admin rate limit) for each request; absent: no limit. */
  newCommandBudget?: (() => CommandBudget) | undefined;
}

/** A command's resource: an entity (its id), or a change of a tenant's whole config (its tenant_id). */
type CommandResource = { id: string } | { tenant_id: string };

type Run<Body> = (
  deps: CommandRouterDeps,
  ctx: CommandContext,
  body: Body,
  id: string,
  /** Every path parameter (e.g. `domain` of the custom-domain endpoints). */
  params: Readonly<Record<string, string>>,
) => Promise<CommandOutcome<CommandResource>>;

interface CommandSpec<Schema extends z.ZodType> {
  name: string;
  schema: Schema | null;
  /** 201 + Location for creates, 200 for updates, 204 for deletes. */
  status: 201 | 200 | 204;
  /** The collection a created resource lives in (for Location). */
  collection?: string;
  /** Location of a created resource that is not `/api/v1/<collection>/<id>`. */
  location?: (resource: { id: string }) => string;
  run: Run<z.infer<Schema>>;
  bodyRequired?: boolean;
  /** Only platform admins may run it, and so only they may see its stored answer again. */
  platformAdminOnly?: boolean;
  /**
   * Access to the tenant of the path the caller needs before its body is validated: for bodies whose
   * validation is costly (a tenant document), so only the tenant's members can make the control plane
   * do it. The command still makes its own checks.
   */
  tenantAccessBeforeBody?: 'read';
  /**
   * Cheap checks of the body as sent, after that access check and before the body is validated: a body
   * they refuse is refused without the cost of its validation. `access`: the caller's to the tenant, as
   * that check found it.
   */
  beforeValidation?: (
    deps: CommandRouterDeps,
    id: string,
    raw: unknown,
    access: Exclude<TenantAccess, 'none'> | undefined,
  ) => Promise<void>;
  /**
   * The request appends nothing (a plan, a rollback's dry run): an Idempotency-Key on it keeps no
   * answer and it simply runs again. Its answer may list a tenant's whole config, and it is charged to
   * no command or event-bytes budget: kept for 24 hours per key, such answers would grow the shared
   * database by as much as the tenant's config read budget lets it plan.
   */
  appendsNothing?: (body: z.infer<Schema>) => boolean;
}

/**
 * The query parameters a command knows; any other is a 400 naming it before anything runs, as on reads:
 * a `?dry_run=true` meant for a rollback's body must not roll back for real.
 */
const commandQuery = z.strictObject({ wait_for_rollout: z.unknown().optional() });

function requestIdOf(res: Response): string {
  const id = res.locals['requestId'];
  return typeof id === 'string' ? id : randomUUID();
}

function toResponse(spec: CommandSpec<z.ZodType>, outcome: CommandOutcome<CommandResource>): StoredResponse {
  const headers: Record<string, string> = {
    'X-Event-Position': outcome.position.toString(),
    ETag: etag(outcome.revision),
  };
  if (spec.status === 201 && 'id' in outcome.resource) {
    if (spec.location) headers['Location'] = spec.location(outcome.resource);
    else if (spec.collection) headers['Location'] = `/api/v1/${spec.collection}/${outcome.resource.id}`;
  }
  return { status: spec.status, headers, body: spec.status === 204 ? null : outcome.resource };
}

function send(res: Response, response: StoredResponse): void {
  for (const [name, value] of Object.entries(response.headers)) res.setHeader(name, value);
  // A command's answer is of that one request (an issued or rotated API key's plaintext among them): no
  // browser or proxy cache may keep it.
  res.setHeader('Cache-Control', 'no-store');
  if (response.status === 204) res.status(204).end();
  else res.status(response.status).json(response.body);
}

/**
 * One express handler per command: validate the body, build the context (caller, request id, If-Match),
 * honour Idempotency-Key on POST, run the command, answer with the resource, ETag and X-Event-Position.
 */
function commandHandler<Schema extends z.ZodType>(
  deps: CommandRouterDeps,
  spec: CommandSpec<Schema>,
): RequestHandler {
  return async (req: Request, res: Response) => {
    parseQuery(commandQuery, req.query);
    const caller = callerOf(res);
    const sentId = typeof req.params['id'] === 'string' ? req.params['id'] : '';
    // A resource's stream, its tenant's access and budgets know its id in one spelling: lower case.
    const id = sentId.toLowerCase();
    // Only the access check: the command charges the tenant's budget once it runs.
    const access =
      spec.tenantAccessBeforeBody === undefined
        ? undefined
        : await requireAccess(
            { authorizer: deps.authorizer, store: deps.store },
            caller,
            id,
            spec.tenantAccessBeforeBody,
            unknownTenantOfPath,
          );
    // Creates need a body; an absent body of PATCH, revoke or rotate means "no fields".
    const raw: unknown = req.body ?? (spec.bodyRequired ? undefined : {});
    await spec.beforeValidation?.(deps, id, raw, access);
    const body = (spec.schema ? parseBody(spec.schema, raw) : {}) as z.infer<Schema>;
    const ctx: CommandContext = { caller, requestId: requestIdOf(res), ifMatch: ifMatchRevisions(req) };
    const rolloutWaitMs = parseRolloutWait(deps, req);
    const execute = async (
      ctx: CommandContext,
    ): Promise<{ response: StoredResponse; guard: ReplayGuard }> => {
      // The command charges its tenant's budget once its write access is known, before it appends.
      const runDeps = deps.newCommandBudget ? { ...deps, commandBudget: deps.newCommandBudget() } : deps;
      try {
        const outcome = await spec.run(runDeps, ctx, body, id, req.params as Record<string, string>);
        deps.onCommand?.(spec.name, 'ok');
        const tenantId = tenantIdOf(outcome.resource);
        const guard = { tenantId, platformAdminOnly: spec.platformAdminOnly ?? false };
        const response = toResponse(spec as CommandSpec<z.ZodType>, outcome);
        if (rolloutWaitMs === undefined || !deps.rollout) return { response, guard };
        return {
          response: await awaitRollout(deps.rollout, response, tenantId, outcome.position, rolloutWaitMs),
          guard,
        };
      } catch (error) {
        const answer = supersededAttempt(error) ?? error;
        deps.onCommand?.(spec.name, toApiError(answer)?.code ?? 'internal');
        throw answer;
      }
    };

    const key = req.method === 'POST' ? req.get('idempotency-key') : undefined;
    if (key !== undefined) IdempotencyStore.validKey(key);
    if (key === undefined || spec.appendsNothing?.(body)) {
      send(res, (await execute(ctx)).response);
      return;
    }
    // The id in the path is hashed in its one spelling: a retry that spells it otherwise is the same request.
    const hash = requestHash(
      req.method,
      sentId ? req.originalUrl.replace(sentId, id) : req.originalUrl,
      req.body,
    );
    const claim = await deps.idempotency.claim(
      caller.userId,
      key,
      hash,
      async (guard, answerBytes) => {
        // The stored answer may hold an API key's plaintext: only a caller who may still run the
        // command sees it again (records are per caller, so no one else ever does).
        await authorizeReplay(deps, caller, guard);
        // Reading, opening and sending it costs the control plane's thread what reading that much config
        // does (a rollback's answer lists every resource it changed, before and after): replays of it
        // in a loop are paid from the tenant's config read budget, as such reads are.
        if (guard.tenantId !== null) configReadBudgetOf(deps.store).chargeBytes(guard.tenantId, answerBytes);
      },
      rolloutWaitMs,
    );
    if (claim.kind === 'replay') {
      res.setHeader('Idempotent-Replayed', 'true');
      send(res, claim.response);
      return;
    }
    // The key stays this request's while it runs, however long; whichever way it ends, renewals stop.
    const held = deps.idempotency.hold(caller.userId, key, claim.attempt);
    let executed: { response: StoredResponse; guard: ReplayGuard };
    try {
      try {
        // Its events carry the attempt: a retry finds them by it, and they are stored only while it holds the key.
        executed = await execute({ ...ctx, idempotencyAttempt: claim.attempt });
      } catch (error) {
        // Events stored without their answer keep the key: a retry looks them up before running again.
        const maybeStored = error instanceof StoreUnavailableError && error.outcomeUnknown;
        // Taken over by a retry, which may have found this request's events and answered them applied,
        // whatever then refused the command (the fence, its budget, a concurrent change): when the
        // command undid them, that answer is dropped.
        if (!maybeStored && !(await deps.idempotency.release(caller.userId, key, claim.attempt))) {
          await deps.idempotency.reopenIfUndone(caller.userId, key, claim.attempt);
        }
        throw error;
      }
      await deps.idempotency.complete(caller.userId, key, claim.attempt, executed.response, executed.guard);
    } finally {
      held.stop();
    }
    send(res, executed.response);
  };
}

/** `?wait_for_rollout=5s` is validated before the command runs, so a bad value changes nothing. */
function parseRolloutWait(deps: CommandRouterDeps, req: Request): number | undefined {
  const raw = req.query['wait_for_rollout'];
  if (raw === undefined) return undefined;
  if (!deps.rollout) {
    throw validationFailed([
      { field: 'wait_for_rollout', issue: 'rollout status is not available (no REDIS_URL)' },
    ]);
  }
  const parsed = parseWaitForRollout(raw);
  if (!parsed.ok) throw validationFailed([{ field: 'wait_for_rollout', issue: parsed.issue }]);
  return parsed.ms;
}

/** The tenant whose gateway config a command changed: the resource's tenant, or the tenant itself. */
function tenantIdOf(resource: CommandResource): string {
  return 'tenant_id' in resource && typeof resource.tenant_id === 'string'
    ? resource.tenant_id
    : (resource as { id: string }).id;
}

/**
 * Holds the answer until every live gateway replica has applied the change (the normal status, with
 * `X-Rollout: complete`), or answers 202 with the rollout status when the wait runs out
 * (`X-Rollout: pending`) or the status could not be read (`X-Rollout: unknown`). The command is stored
 * either way, so nothing here may turn its answer into an error.
 */
async function awaitRollout(
  rollout: RolloutDeps,
  response: StoredResponse,
  tenantId: string,
  position: bigint,
  timeoutMs: number,
): Promise<StoredResponse> {
  const result = await waitForRollout(rollout, { tenantId, minPosition: position, timeoutMs });
  if (result.done) return { ...response, headers: { ...response.headers, 'X-Rollout': 'complete' } };
  return {
    status: 202,
    headers: { ...response.headers, 'X-Rollout': result.unreadable ? 'unknown' : 'pending' },
    body: { resource: response.body, rollout: result.status },
  };
}

const uuidParam: RequestHandler = (req, _res, next) => {
  const id = req.params['id'];
  if (typeof id !== 'string' || !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id)) {
    next(
      new ApiError(404, 'not_found', 'no resource with this id', [{ field: 'id', issue: 'must be a uuid' }]),
    );
    return;
  }
  next();
};

/** Every write endpoint of the admin API (POST/PATCH/DELETE); the GETs are the query router's. */
export function createCommandRouter(deps: CommandRouterDeps): express.Router {
  const router = exactRouter();
  const h = <Schema extends z.ZodType>(spec: CommandSpec<Schema>) => commandHandler(deps, spec);

  router.post(
    '/tenants',
    h({
      name: 'CreateTenant',
      bodyRequired: true,
      schema: createTenantBody,
      status: 201,
      collection: 'tenants',
      platformAdminOnly: true,
      run: (d, c, b) => createTenant(d, c, b),
    }),
  );
  router.patch(
    '/tenants/:id',
    uuidParam,
    h({
      name: 'UpdateTenant',
      schema: updateTenantBody,
      status: 200,
      run: (d, c, b, id) => updateTenant(d, c, id, b),
    }),
  );
  router.delete(
    '/tenants/:id',
    uuidParam,
    h({ name: 'DeleteTenant', schema: null, status: 204, run: (d, c, _b, id) => deleteTenant(d, c, id) }),
  );

  router.post(
    '/users',
    h({
      name: 'CreateUser',
      bodyRequired: true,
      schema: createUserBody,
      status: 201,
      collection: 'users',
      run: (d, c, b) => createUser(d, c, b),
    }),
  );
  router.patch(
    '/users/:id',
    uuidParam,
    h({
      name: 'ChangeUserRole',
      schema: updateUserBody,
      status: 200,
      run: (d, c, b, id) => changeUserRole(d, c, id, b),
    }),
  );
  router.delete(
    '/users/:id',
    uuidParam,
    h({ name: 'DeleteUser', schema: null, status: 204, run: (d, c, _b, id) => deleteUser(d, c, id) }),
  );

  router.post(
    '/origins',
    h({
      name: 'CreateOrigin',
      bodyRequired: true,
      schema: createOriginBody,
      status: 201,
      collection: 'origins',
      run: (d, c, b) => createOrigin(d, c, b),
    }),
  );
  router.patch(
    '/origins/:id',
    uuidParam,
    h({
      name: 'UpdateOrigin',
      schema: updateOriginBody,
      status: 200,
      run: (d, c, b, id) => updateOrigin(d, c, id, b),
    }),
  );
  router.delete(
    '/origins/:id',
    uuidParam,
    h({ name: 'DeleteOrigin', schema: null, status: 204, run: (d, c, _b, id) => deleteOrigin(d, c, id) }),
  );

  router.post(
    '/routes',
    h({
      name: 'CreateRoute',
      bodyRequired: true,
      schema: createRouteBody,
      status: 201,
      collection: 'routes',
      run: (d, c, b) => createRoute(d, c, b),
    }),
  );
  router.patch(
    '/routes/:id',
    uuidParam,
    h({
      name: 'UpdateRoute',
      schema: updateRouteBody,
      status: 200,
      run: (d, c, b, id) => updateRoute(d, c, id, b),
    }),
  );
  router.delete(
    '/routes/:id',
    uuidParam,
    h({ name: 'DeleteRoute', schema: null, status: 204, run: (d, c, _b, id) => deleteRoute(d, c, id) }),
  );

  router.post(
    '/api-keys',
    h({
      name: 'IssueApiKey',
      bodyRequired: true,
      schema: createApiKeyBody,
      status: 201,
      collection: 'api-keys',
      run: (d, c, b) => issueApiKey(d, c, b),
    }),
  );
  router.patch(
    '/api-keys/:id',
    uuidParam,
    h({
      name: 'UpdateApiKey',
      schema: updateApiKeyBody,
      status: 200,
      run: (d, c, b, id) => updateApiKey(d, c, id, b),
    }),
  );
  router.post(
    '/api-keys/:id/rotate',
    uuidParam,
    h({
      name: 'RotateApiKey',
      schema: rotateApiKeyBody,
      status: 201,
      collection: 'api-keys',
      run: (d, c, b, id) => rotateApiKey(d, c, id, b),
    }),
  );
  router.post(
    '/api-keys/:id/revoke',
    uuidParam,
    h({
      name: 'RevokeApiKey',
      schema: revokeApiKeyBody,
      status: 200,
      run: (d, c, b, id) => revokeApiKey(d, c, id, b),
    }),
  );
  router.post(
    '/routes/:id/cache/purge',
    uuidParam,
    h({
      name: 'PurgeRouteCache',
      schema: null,
      status: 200,
      run: (d, c, _b, id) => purgeRouteCache(d, c, id),
    }),
  );
  router.post(
    '/tenants/:id/cache/purge',
    uuidParam,
    h({
      name: 'PurgeTenantCache',
      schema: purgeTenantCacheBody,
      status: 200,
      run: (d, c, b, id) => purgeTenantCache(d, c, id, b),
    }),
  );
  router.post(
    '/tenants/:id/domains',
    uuidParam,
    h({
      name: 'CreateCustomDomain',
      bodyRequired: true,
      schema: createCustomDomainBody,
      status: 201,
      location: (resource) =>
        `/api/v1/tenants/${(resource as CustomDomainResource).tenant_id}/domains/${(resource as CustomDomainResource).domain}`,
      run: (d, c, b, id) => createCustomDomain(d, c, id, b),
    }),
  );
  router.post(
    '/tenants/:id/domains/:domain/verify',
    uuidParam,
    h({
      name: 'VerifyCustomDomain',
      schema: null,
      status: 200,
      run: (d, c, _b, id, params) => verifyCustomDomain(d, c, id, domainParam(params['domain'] ?? '')),
    }),
  );
  router.delete(
    '/tenants/:id/domains/:domain',
    uuidParam,
    h({
      name: 'DeleteCustomDomain',
      schema: null,
      status: 204,
      run: (d, c, _b, id, params) => deleteCustomDomain(d, c, id, domainParam(params['domain'] ?? '')),
    }),
  );

  // DELETE of a key revokes it (keys are never erased: the audit log keeps them).
  router.delete(
    '/api-keys/:id',
    uuidParam,
    h({ name: 'RevokeApiKey', schema: null, status: 204, run: (d, c, _b, id) => revokeApiKey(d, c, id, {}) }),
  );

  router.post(
    '/certificates',
    h({
      name: 'UploadCertificate',
      bodyRequired: true,
      schema: uploadCertificateBody,
      status: 201,
      collection: 'certificates',
      run: (d, c, b) => uploadCertificate(d, c, b),
    }),
  );
  router.post(
    '/certificates/:id/reseal',
    uuidParam,
    h({
      name: 'ResealCertificateKey',
      schema: null,
      status: 200,
      run: (d, c, _b, id) => resealCertificateKey(d, c, id),
    }),
  );
  router.delete(
    '/certificates/:id',
    uuidParam,
    h({
      name: 'DeleteCertificate',
      schema: null,
      status: 204,
      run: (d, c, _b, id) => deleteCertificate(d, c, id),
    }),
  );
  const tenantConfigs = deps.tenantConfigs;
  if (tenantConfigs) {
    const withConfigs = (d: CommandRouterDeps) => ({ ...d, tenantConfigs });
    // Charged to the tenant's config read budget and counted against its limits before it is validated.
    const countedDocument = (
      d: CommandRouterDeps,
      id: string,
      raw: unknown,
      access: Exclude<TenantAccess, 'none'> | undefined,
    ) => admitDocument(withConfigs(d), id, raw, access ?? 'read');
    router.post(
      '/tenants/:id/config/plan',
      uuidParam,
      h({
        name: 'PlanTenantConfig',
        bodyRequired: true,
        schema: configDocument,
        tenantAccessBeforeBody: 'read',
        beforeValidation: countedDocument,
        appendsNothing: () => true,
        status: 200,
        run: async (d, c, b, id) => {
          const plan = await planTenantConfig(withConfigs(d), c, id, b);
          return { resource: plan, revision: BigInt(plan.version), position: BigInt(plan.position) };
        },
      }),
    );
    router.post(
      '/tenants/:id/config/apply',
      uuidParam,
      h({
        name: 'ApplyTenantConfig',
        bodyRequired: true,
        schema: configDocument,
        tenantAccessBeforeBody: 'read',
        beforeValidation: countedDocument,
        status: 200,
        run: (d, c, b, id) => applyTenantConfig(withConfigs(d), c, id, b),
      }),
    );
    router.post(
      '/tenants/:id/config/rollback',
      uuidParam,
      h({
        name: 'RollbackTenantConfig',
        bodyRequired: true,
        schema: rollbackBody,
        appendsNothing: (b) => b.dry_run,
        status: 200,
        run: (d, c, b, id) => rollbackTenantConfig(withConfigs(d), c, id, b),
      }),
    );
  }

  return router;
}
