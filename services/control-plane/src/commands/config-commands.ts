import { randomUUID } from 'node:crypto';
import { type RouteState, streamName } from '@vantageedge/shared/domain/events';
import type { TenantAccess } from '../auth/caller.js';
import type { HeldLock } from '../config-history/config-change-lock.js';
import {
  type ConfigPlan,
  type DeletedResources,
  type OriginRef,
  outsideSelection,
  type PlannedChange,
  type PlanStep,
  planConfig,
} from '../config-history/config-plan.js';
import { configReadBudgetOf } from '../config-history/config-read-budget.js';
import { redactedChanges } from '../config-history/redact-credentials.js';
import { asSeenWith } from '../config-history/redact-match-values.js';
import { rollbackDocumentOf } from '../config-history/rollback-document.js';
import type { TenantConfig, TenantConfigs } from '../config-history/tenant-config.js';
import type { Lifecycle } from '../domain/decision.js';
import { DomainError, invalid, preconditionFailed, unavailable, underPlace } from '../domain/errors.js';
import { originDecider } from '../domain/origin.js';
import { routeDecider } from '../domain/route.js';
import { requireDocumentConnectTimeoutsApplied } from '../domain/route-connect-timeouts.js';
import { requireDistinctDocumentMatches } from '../domain/route-match.js';
import { type ConfigDocument, configDocument } from '../schemas/config-document.js';
import { type Foldable, foldLatest } from './aggregate-folds.js';
import {
  type CommandContext,
  type CommandDeps,
  type CommandOutcome,
  type ExpectedRevisions,
  eventMetadata,
  requireAccess,
  unknownTenantOfPath,
} from './context.js';
import { requireDocumentClientCertificates } from './document-certificates.js';
import { describeIfMatch } from './handle-command.js';
import { requireOwnOidcProvider } from './oidc-provider.js';
import { addressRefusals, newConfigDocumentUrls, requireAllowedAddresses } from './origin-addresses.js';
import { createOrigin, deleteOrigin, updateOrigin } from './origin-commands.js';
import {
  originReferenceFailure,
  removedMeanwhile,
  revisionAsPlanned,
  stepFailure,
} from './plan-step-races.js';
import { rehearsalStore } from './rehearsal-store.js';
import { restoreOrigin, restoreRoute } from './restore-commands.js';
import { createRoute, deleteRoute, updateRoute } from './route-commands.js';
import { createStreamFolds } from './stream-folds.js';
import { updateTenant } from './tenant-commands.js';
import {
  documentEntryCounts,
  type EntryCounts,
  requireDocumentMatchConditionsWithinLimit,
  requireDocumentWithinLimits,
} from './tenant-limits.js';

/**
 * Declarative config commands. `plan` compares a document with the tenant's current config; `apply`
 * runs the plan's commands one by one through the normal command handling (deciders, limits, access);
 * `rollback` applies the config the tenant had after an earlier event, recorded first as
 * `ConfigRolledBack` (the position it restores), which every compensating event names as its cause.
 *
 * An apply or rollback runs alone for its tenant (`TenantConfigs.exclusively`, across processes): it
 * plans from the config the one before it left (the event store's, never the read models') and counts
 * its document against the tenant's limits there, so changes sent at once cannot together pass them.
 * Its steps first run on a rehearsal store (rehearsal-store.ts) that appends nothing: a step that
 * would be refused — a field only platform admins may change, an origin address or a host not allowed —
 * is refused before the first event (or the rollback's marker) is appended. A plan (for a caller who
 * may write the tenant) and a rollback's dry run run the same rehearsal, so they answer the refusal the
 * command would, appending nothing.
 * Commands on several streams are not one transaction: a failure part-way that the rehearsal could not
 * foresee (a single-resource command racing the steps, the snapshot bus's limit, PostgreSQL going away)
 * leaves the steps before it applied; planning again from the new state finishes the job (a retry
 * converges). A step updates its resource only at the revision the plan saw (plan-step-races.ts), so a
 * racing command never has the plan's fields written onto what it changed.
 */

export interface ConfigCommandDeps extends CommandDeps {
  tenantConfigs: TenantConfigs;
}

/** What plan, apply and rollback answer. */
export interface ConfigChangeResult {
  tenant_id: string;
  /** The config version after the command (before it, for a plan or a dry run). */
  version: string;
  /** Position of the last event appended (the newest event position when nothing was appended). */
  position: string;
  changes: PlannedChange[];
}

export type RollbackResult = ConfigChangeResult & { to_position: string };

interface Planned {
  current: TenantConfig;
  head: bigint;
  plan: ConfigPlan;
}

async function currentConfig(
  deps: ConfigCommandDeps,
  tenantId: string,
): Promise<{ config: TenantConfig; head: bigint }> {
  const head = await deps.tenantConfigs.head();
  const at = await deps.tenantConfigs.at(tenantId, head);
  if (at.status !== 'live') throw unknownTenantOfPath();
  return { config: at.config, head };
}

/**
 * The ids a document names that are not live: those the tenant had and deleted may come back. Each is
 * a read of its stream (the whole of it the first time), one after the other: the reads are charged to
 * the tenant's config read budget (the bucket of the caller's `access`), and stop with its 429 once it
 * is in debt.
 */
async function deletedResources(
  deps: CommandDeps,
  tenantId: string,
  current: TenantConfig,
  document: ConfigDocument,
  access: Exclude<TenantAccess, 'none'>,
) {
  const live = new Set([...current.origins, ...current.routes].map((resource) => resource.id));
  const wasOfTenant = (state: Lifecycle<{ tenant_id: string }>) =>
    state.status === 'deleted' && state.data.tenant_id === tenantId;
  const routeHeaders = new Map<string, RouteState['request_headers'] | undefined>();
  const routeQueries = new Map<string, RouteState['query'] | undefined>();
  const deleted: DeletedResources = { origins: new Set(), routes: new Set(), routeHeaders, routeQueries };
  const budget = configReadBudgetOf(deps.store, access);
  const charged = <State>(stream: string, decider: Foldable<State>) => {
    budget.admit(tenantId);
    return foldLatest(deps.store, stream, decider, (events) => budget.spendStreamRead(tenantId, events));
  };
  for (const { id } of document.origins) {
    if (id === undefined || live.has(id)) continue;
    if (wasOfTenant(await charged(streamName.origin(id), originDecider))) {
      (deleted.origins as Set<string>).add(id);
    }
  }
  for (const { id } of document.routes) {
    if (id === undefined || live.has(id)) continue;
    const route = await charged(streamName.route(id), routeDecider);
    if (wasOfTenant(route) && route.status === 'deleted') {
      (deleted.routes as Set<string>).add(id);
      // What a credential header's or query parameter's <redacted> placeholder keeps when the
      // document brings it back.
      routeHeaders.set(id, route.data.request_headers);
      routeQueries.set(id, route.data.query);
    }
  }
  return deleted;
}

async function planFor(
  deps: ConfigCommandDeps,
  tenantId: string,
  document: ConfigDocument,
  access: Exclude<TenantAccess, 'none'>,
): Promise<Planned> {
  const { config, head } = await currentConfig(deps, tenantId);
  // A share's document (select_tags) leaves the other origins and routes as they are: the tenant it
  // leaves is those and the document's.
  const kept = outsideSelection(config, document.select_tags ?? []);
  // Before a stream is read for each id the document names: a plan needs only read access.
  requireDocumentWithinLimits(deps, documentEntryCounts(document), countsOf(config), countsOf(kept));
  requireDistinctDocumentMatches(document.routes, kept.routes);
  requireDocumentMatchConditionsWithinLimit(deps, document.routes, config.routes, kept.routes);
  requireDocumentConnectTimeoutsApplied(document, config, kept.routes);
  requireAllowedAddresses(deps.originAddressPolicy, newConfigDocumentUrls(document, config));
  requireOwnOidcProvider(deps.clerkIssuer, document.tenant.settings?.oidc, 'tenant.settings');
  await requireDocumentClientCertificates(deps, tenantId, document, config, access);
  const deleted = await deletedResources(deps, tenantId, config, document, access);
  return { current: config, head, plan: planConfig(config, document, deleted) };
}

/**
 * Admits a document to plan or apply, from the request body before it is validated (after the caller's
 * `access` to the tenant). Validating and planning it costs the control plane's one thread: the tenant's
 * config read budget (the caller's bucket of it) is charged for its config and for validating the
 * document (a 429 when that is in debt). A document the tenant's limits refuse anyway is refused by its entry counts, its entries
 * — up to 20,000 routes — never validated; the answer is the one `planFor` gives. Apply counts again
 * under its tenant's lock.
 */
export async function admitDocument(
  deps: ConfigCommandDeps,
  tenantId: string,
  body: unknown,
  access: Exclude<TenantAccess, 'none'>,
): Promise<void> {
  const { config } = await currentConfig(deps, tenantId);
  configReadBudgetOf(deps.store, access).chargeDocument(tenantId, body, config);
  requireDocumentWithinLimits(deps, documentEntryCounts(body), countsOf(config));
}

function result(
  tenantId: string,
  version: string,
  position: bigint,
  changes: PlannedChange[],
): ConfigChangeResult {
  // Credential header and query parameter values are write-only: the answer shows them as <redacted>
  // (a plan of the real values).
  return { tenant_id: tenantId, version, position: position.toString(), changes: redactedChanges(changes) };
}

/**
 * POST /api/v1/tenants/:id/config/plan: what apply would change (read access; appends nothing). For a
 * caller who may write the tenant, its steps are rehearsed as apply rehearses them, so a plan answers
 * the refusal apply would (a reader's apply is refused for its access alone).
 */
export async function planTenantConfig(
  deps: ConfigCommandDeps,
  ctx: CommandContext,
  tenantId: string,
  document: ConfigDocument,
): Promise<ConfigChangeResult> {
  const access = await requireAccess(deps, ctx.caller, tenantId, 'read', unknownTenantOfPath);
  const { current, head, plan } = await planFor(deps, tenantId, document, access);
  if (access === 'write') await previewSteps(deps, ctx, tenantId, plan);
  return asSeenWith(access, result(tenantId, current.version, head, plan.changes));
}

/**
 * Runs a plan's steps as the caller's own commands. New origins get their ids as they are created,
 * and the routes that name them are created after them. Answers the position of the newest event the
 * steps appended, or null when they appended none.
 */
async function executePlan(
  planDeps: ConfigCommandDeps,
  ctx: CommandContext,
  tenantId: string,
  plan: ConfigPlan,
  /** The position the plan was made from (apply and rollback): each step changes what the plan saw. */
  plannedAt?: bigint,
  lock?: HeldLock,
): Promise<bigint | null> {
  // The steps add before they remove, so one may pass through more than both ends: the document's
  // targets were counted as a whole, and the snapshot guard lets a step use the bus's whole limit.
  const deps: ConfigCommandDeps = {
    ...planDeps,
    countedByPlan: true,
    snapshotGuard: planDeps.snapshotGuard?.forPlanSteps(),
    // Every step checks the tenant's stream: each check folds on from where the last one left it.
    streamFolds: createStreamFolds(),
  };
  const added = new Map<number, string>();
  const originId = (ref: OriginRef): string | null => {
    if ('id' in ref) return ref.id;
    if ('none' in ref) return null;
    const id = added.get(ref.added);
    if (id === undefined) throw new Error(`origin ${ref.added} of the plan was not added before its routes`);
    return id;
  };
  let last: bigint | null = null;
  const record = (outcome: CommandOutcome<unknown>) => {
    // A step whose command found nothing to change (a credential a document states outright, planned
    // as a write, that is the stored value) answers its stream's last event: older than the config
    // version the plan was made on, never the version after the change.
    if (plannedAt !== undefined && outcome.position <= plannedAt) return;
    if (last === null || outcome.position > last) last = outcome.position;
  };
  const runStep = async (step: PlanStep, stepCtx: CommandContext): Promise<void> => {
    switch (step.action) {
      case 'update_tenant':
        record(await updateTenant(deps, stepCtx, tenantId, step.changes));
        break;
      case 'add_origin': {
        const outcome = await createOrigin(deps, stepCtx, { tenant_id: tenantId, ...step.origin });
        added.set(step.index, outcome.resource.id);
        record(outcome);
        break;
      }
      case 'restore_origin':
        record(
          await restoreOrigin(deps, stepCtx, { origin_id: step.id, tenant_id: tenantId, ...step.origin }),
        );
        break;
      case 'update_origin':
        record(await updateOrigin(deps, stepCtx, step.id, step.changes));
        break;
      case 'remove_origin':
        record(await deleteOrigin(deps, stepCtx, step.id));
        break;
      case 'create_route':
        record(
          await createRoute(deps, stepCtx, {
            tenant_id: tenantId,
            origin_id: originId(step.origin),
            ...step.route,
          }),
        );
        break;
      case 'restore_route':
        record(
          await restoreRoute(deps, stepCtx, {
            route_id: step.id,
            tenant_id: tenantId,
            origin_id: originId(step.origin),
            ...step.route,
          }),
        );
        break;
      case 'update_route':
        record(
          await updateRoute(deps, stepCtx, step.id, { ...step.changes, origin_id: originId(step.origin) }),
        );
        break;
      case 'delete_route':
        record(await deleteRoute(deps, stepCtx, step.id));
        break;
    }
  };
  const runPlanned = async (step: PlanStep): Promise<void> => {
    switch (step.action) {
      case 'update_tenant':
      case 'update_origin':
      case 'update_route': {
        // Single-resource commands run beside the steps: a step changes its resource only as planned.
        const ifMatch =
          plannedAt === undefined
            ? undefined
            : await revisionAsPlanned(deps.store, step, tenantId, plannedAt);
        try {
          await runStep(step, ifMatch === undefined ? ctx : { ...ctx, ifMatch: [ifMatch] });
        } catch (error) {
          const failure = await stepFailure(deps.store, step, tenantId, error);
          if (step.action !== 'update_route' || !('id' in step.origin)) throw failure;
          throw await originReferenceFailure(deps.store, step.origin.id, failure);
        }
        break;
      }
      case 'remove_origin':
      case 'delete_route':
        try {
          await runStep(step, ctx);
        } catch (error) {
          if (!(await removedMeanwhile(deps.store, step, tenantId, error))) throw error;
        }
        break;
      case 'create_route':
      case 'restore_route':
        try {
          await runStep(step, ctx);
        } catch (error) {
          if (!('id' in step.origin)) throw error;
          throw await originReferenceFailure(deps.store, step.origin.id, error);
        }
        break;
      default:
        await runStep(step, ctx);
    }
  };
  for (const step of plan.steps) {
    // A change whose lock was lost (its connection ended) may have another change beside it now.
    await lock?.assertHeld();
    try {
      await runPlanned(step);
    } catch (error) {
      throw placedInDocument(error, step);
    }
  }
  return last;
}

/**
 * A step's refusal with the fields of its command's body named from the step's entry in the document
 * (`routes.3.match.hosts.0`, not `match.hosts.0`): in a document of many entries the command's own
 * names say none of them. Fields that are no member of the body (a collection over its limit, a rate
 * limit, If-Match) are about the whole change and stay as they are.
 */
function placedInDocument(error: unknown, step: PlanStep): unknown {
  if (!(error instanceof DomainError) || !('place' in step)) return error;
  const body = commandBodyOf(step);
  const ofBody = (field: string) => Object.hasOwn(body, field.split('.', 1)[0]!);
  const fields = [...(error.field === undefined ? [] : [error.field]), ...error.issues.map((i) => i.field)];
  if (fields.length === 0 || !fields.every(ofBody)) return error;
  return underPlace(error, step.place);
}

function commandBodyOf(step: Extract<PlanStep, { place: string }>): object {
  switch (step.action) {
    case 'create_route':
    case 'restore_route':
      return { origin_id: null, ...step.route };
    case 'update_route':
      return { origin_id: null, ...step.changes };
    case 'add_origin':
    case 'restore_origin':
      return step.origin;
    case 'update_origin':
    case 'update_tenant':
      return step.changes;
  }
}

/** The steps run without the request's If-Match (that one is about the whole config). */
const stepContext = (ctx: CommandContext, causationId?: string): CommandContext => ({
  caller: ctx.caller,
  requestId: ctx.requestId,
  // Every step's events are the Idempotency-Key attempt's: a retry finds them (http/idempotency.ts).
  ...(ctx.idempotencyAttempt !== undefined ? { idempotencyAttempt: ctx.idempotencyAttempt } : {}),
  ...(causationId !== undefined ? { causationId } : {}),
});

function requireVersion(ifMatch: ExpectedRevisions | undefined, current: TenantConfig): void {
  if (ifMatch === undefined || ifMatch.some((version) => version.toString() === current.version)) return;
  throw preconditionFailed(
    `If-Match ${describeIfMatch(ifMatch)} is not the tenant's config version "${current.version}": the config changed since it was read`,
    'stale config version',
  );
}

/**
 * Runs the plan's steps on a store that keeps their events in memory (rehearsal-store.ts): throws what
 * the first refused step would, having appended nothing, and answers the bytes the steps would append.
 * Nothing outside the rehearsal is touched: the snapshot guard is left out (it measures the real store's
 * config, which holds none of the rehearsed steps), and so are the cache purger (a rehearsed delete or
 * restore must not forget or bump a route's cache generation) and the tenant's admin command limits (a
 * request is counted once, when write access to the tenant is granted).
 */
async function rehearseSteps(
  deps: ConfigCommandDeps,
  ctx: CommandContext,
  tenantId: string,
  plan: ConfigPlan,
  plannedAt?: bigint,
): Promise<number> {
  if (plan.steps.length === 0) return 0;
  let bytes = 0;
  const rehearsal: ConfigCommandDeps = {
    ...deps,
    store: rehearsalStore(deps.store),
    snapshotGuard: undefined,
    cachePurger: undefined,
    commandBudget: {
      charge: async () => {},
      chargeEventBytes: async (_tenantId, appended) => {
        bytes += appended;
      },
      prepayEventBytes: async () => {},
    },
  };
  await executePlan(rehearsal, ctx, tenantId, plan, plannedAt);
  return bytes;
}

/**
 * Rehearses the steps of an apply or rollback about to run, then charges the bytes they append to the
 * tenant's event bytes budget at once, so no step is refused by it part-way.
 */
async function rehearsePlan(
  deps: ConfigCommandDeps,
  ctx: CommandContext,
  tenantId: string,
  plan: ConfigPlan,
  plannedAt: bigint,
): Promise<void> {
  if (plan.steps.length === 0) return;
  const bytes = await rehearseSteps(deps, ctx, tenantId, plan, plannedAt);
  await deps.commandBudget?.prepayEventBytes(tenantId, bytes);
}

/**
 * A plan's or a rollback dry run's steps, rehearsed as the command would rehearse them: the same
 * refusal, nothing appended, nothing charged to the tenant's event bytes. A preview is a whole-config
 * read: its rehearsal is charged to the tenant's config read budget, by its steps (the read was admitted
 * before its configs or its document were read).
 */
async function previewSteps(
  deps: ConfigCommandDeps,
  ctx: CommandContext,
  tenantId: string,
  plan: ConfigPlan,
): Promise<void> {
  configReadBudgetOf(deps.store).spendRehearsedSteps(tenantId, plan.steps.length);
  await rehearseSteps(deps, stepContext(ctx), tenantId, plan);
}

/**
 * A route the plan restores under its old id is purged before the plan runs, so it never serves what it
 * stored before its delete: above every generation it had where the delete dropped its generation (the
 * Redis purger's forgetRoute), and above the one its entries are still stored under where nothing did
 * (the single-process cache of `make dev`). With the cache store unreachable, nothing is recorded.
 */
async function purgeRestoredRoutes(
  deps: ConfigCommandDeps,
  tenantId: string,
  plan: ConfigPlan,
): Promise<void> {
  const purger = deps.cachePurger;
  if (purger === undefined) return;
  for (const step of plan.steps) {
    if (step.action !== 'restore_route') continue;
    try {
      await purger.purgeRoute(tenantId, step.id);
    } catch (error) {
      throw unavailable(
        'cache_purge_unavailable',
        'a route the change restores must have its cache purged first, and the cache store is unreachable; nothing was changed, try again shortly',
        error,
      );
    }
  }
}

/** POST /api/v1/tenants/:id/config/apply: make the tenant what the document says. */
export async function applyTenantConfig(
  deps: ConfigCommandDeps,
  ctx: CommandContext,
  tenantId: string,
  document: ConfigDocument,
): Promise<CommandOutcome<ConfigChangeResult>> {
  await requireAccess(deps, ctx.caller, tenantId, 'write', unknownTenantOfPath);
  return deps.tenantConfigs.exclusively(tenantId, async (lock) => {
    const { current, head, plan } = await planFor(deps, tenantId, document, 'write');
    requireVersion(ctx.ifMatch, current);
    await rehearsePlan(deps, stepContext(ctx), tenantId, plan, head);
    await purgeRestoredRoutes(deps, tenantId, plan);
    const last = await executePlan(deps, stepContext(ctx), tenantId, plan, head, lock);
    const version = last === null ? current.version : last.toString();
    return {
      resource: result(tenantId, version, last ?? head, plan.changes),
      revision: BigInt(version),
      position: last ?? BigInt(current.version),
    };
  });
}

export interface RollbackRequest {
  to_position: bigint;
  dry_run: boolean;
}

interface PlannedRollback {
  current: TenantConfig;
  /** The position `current` is the config at. */
  head: bigint;
  document: ConfigDocument;
  plan: ConfigPlan;
}

/**
 * The plan that brings back the config the tenant had after `toPosition`, its service accounts as they
 * are now (rollback-document.ts); 400 naming to_position when there is none, 412 when `ifMatch` is not
 * the current config version (before the history is folded).
 */
async function planRollback(
  deps: ConfigCommandDeps,
  tenantId: string,
  toPosition: bigint,
  ifMatch: ExpectedRevisions | undefined,
): Promise<PlannedRollback> {
  // Two whole configs read and planned between: a whole-config read, refused while the tenant's
  // config read budget is in debt before the history is folded.
  const budget = configReadBudgetOf(deps.store);
  budget.admit(tenantId);
  const { config: current, head } = await currentConfig(deps, tenantId);
  // A rollback reviewed (as a dry run) on one version must not undo what was changed since.
  requireVersion(ifMatch, current);
  if (toPosition > head) {
    throw invalid(`to_position is beyond the newest event position (${head})`, 'to_position');
  }
  const target = await deps.tenantConfigs.recordedAt(tenantId, toPosition);
  if (target.status !== 'live') {
    throw invalid(
      target.status === 'absent'
        ? `the tenant did not exist yet at position ${toPosition}`
        : `the tenant was deleted at position ${target.version}`,
      'to_position',
    );
  }
  budget.spend(tenantId, [current, target.config]);
  const parsed = configDocument.safeParse(rollbackDocumentOf(target.config, current));
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw invalid(
      `the config at position ${toPosition} breaks today's rules at ${issue?.path.join('.') ?? '?'}: ${issue?.message ?? ''}`,
      'to_position',
    );
  }
  // An earlier release recorded addresses now refused (or ORIGIN_BLOCKED_CIDRS has grown since).
  const blocked = addressRefusals(deps.originAddressPolicy, newConfigDocumentUrls(parsed.data, current))[0];
  if (blocked !== undefined) {
    throw new DomainError(
      'invalid',
      `the config at position ${toPosition} names a blocked address at ${blocked.field}`,
      'to_position',
      { code: 'origin_address_blocked', issue: blocked.issue },
    );
  }
  // The route steps skip the match check of each route command, as an apply's do: the document's routes
  // are compared as a whole (an earlier release may have recorded two the gateway cannot tell apart).
  requireDistinctDocumentMatches(parsed.data.routes);
  const deleted = await deletedResources(deps, tenantId, current, parsed.data, 'write');
  // The document holds the recorded values, the real ones: nothing in it is a placeholder.
  const plan = planConfig(current, parsed.data, deleted, { placeholders: 'literal' });
  return { current, head, document: parsed.data, plan };
}

/** A rollback's document against the tenant's limits, as an apply's is counted (before any step). */
function requireRollbackWithinLimits(deps: ConfigCommandDeps, { current, document }: PlannedRollback): void {
  requireDocumentWithinLimits(deps, documentEntryCounts(document), countsOf(current));
  requireDocumentMatchConditionsWithinLimit(deps, document.routes, current.routes);
  requireDocumentConnectTimeoutsApplied(document, current);
}

/** POST /api/v1/tenants/:id/config/rollback: restore the config the tenant had after `to_position`. */
export async function rollbackTenantConfig(
  deps: ConfigCommandDeps,
  ctx: CommandContext,
  tenantId: string,
  request: RollbackRequest,
): Promise<CommandOutcome<RollbackResult>> {
  await requireAccess(deps, ctx.caller, tenantId, 'write', unknownTenantOfPath);
  const toPosition = request.to_position;
  const answer = (
    { plan }: PlannedRollback,
    version: string,
    position: bigint,
  ): CommandOutcome<RollbackResult> => ({
    resource: { ...result(tenantId, version, position, plan.changes), to_position: toPosition.toString() },
    revision: BigInt(version),
    position,
  });
  const unchanged = (planned: PlannedRollback) =>
    answer(planned, planned.current.version, BigInt(planned.current.version));
  if (request.dry_run) {
    const planned = await planRollback(deps, tenantId, toPosition, ctx.ifMatch);
    if (planned.plan.steps.length > 0) {
      requireRollbackWithinLimits(deps, planned);
      await previewSteps(deps, ctx, tenantId, planned.plan);
    }
    return unchanged(planned);
  }

  return deps.tenantConfigs.exclusively(tenantId, async (lock) => {
    const planned = await planRollback(deps, tenantId, toPosition, ctx.ifMatch);
    const { current, head, plan } = planned;
    if (plan.steps.length === 0) return unchanged(planned);
    requireRollbackWithinLimits(deps, planned);
    // Refused steps are refused here, before the marker: a refused rollback records nothing.
    await rehearsePlan(deps, stepContext(ctx), tenantId, plan, head);
    await purgeRestoredRoutes(deps, tenantId, plan);

    const markerId = randomUUID();
    await lock.assertHeld();
    await deps.store.appendToStream(streamName.config(tenantId), [
      {
        id: markerId,
        type: 'ConfigRolledBack',
        data: {
          tenant_id: tenantId,
          to_position: toPosition.toString(),
          from_version: current.version,
          changes: plan.changes.length,
        },
        metadata: eventMetadata(deps, ctx, tenantId),
      },
    ]);
    const last = await executePlan(deps, stepContext(ctx, markerId), tenantId, plan, head, lock);
    const version = last === null ? current.version : last.toString();
    return answer(planned, version, last ?? BigInt(current.version));
  });
}

/** The origins, routes and targets of a tenant (or of part of it). */
function countsOf(config: Pick<TenantConfig, 'origins' | 'routes'>): EntryCounts {
  return {
    origins: config.origins.length,
    routes: config.routes.length,
    targets: config.origins.reduce((sum, origin) => sum + origin.targets.length, 0),
  };
}
