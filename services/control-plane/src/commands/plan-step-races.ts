import { streamName } from '@vantageedge/shared/domain/events';
import type { EventStore } from '@vantageedge/shared/event-store/port';
import type { PlanStep } from '../config-history/config-plan.js';
import { DomainError } from '../domain/errors.js';
import { originDecider } from '../domain/origin.js';
import { routeDecider } from '../domain/route.js';
import { tenantDecider } from '../domain/tenant.js';
import { aggregateFolds } from './aggregate-folds.js';

/**
 * A config apply's or rollback's steps are planned from the tenant's config at one position and run one
 * by one. Single-resource commands (a route's PATCH or DELETE) wait for the tenant's lock the change
 * holds, but a control plane of an earlier release, during a rolling deploy, does not. A step
 * changes only the fields its plan found different: appended onto a resource another command changed
 * since, it would leave the resource as neither command left it, both answered as done. So each step
 * that changes a resource runs with the resource's revision as its If-Match, once that revision is found
 * to be one the plan saw; a resource changed or deleted since stops the change with 409 `conflict` (the
 * steps before it stay applied, and planning again from the new config finishes the job; a tenant
 * deleted meanwhile is not found, as for every command on it). A removal whose resource another command
 * removed first has nothing left to do.
 */

type ChangingStep = Extract<PlanStep, { action: 'update_tenant' | 'update_origin' | 'update_route' }>;
type RemovingStep = Extract<PlanStep, { action: 'remove_origin' | 'delete_route' }>;

interface StepResource {
  what: string;
  id: string;
  stream: string;
  /** The resource's own revision now and whether it is live (a tenant shares its stream with its users). */
  current(store: EventStore): Promise<{ live: boolean; revision: bigint | null }>;
}

function tenantResource(tenantId: string): StepResource {
  const stream = streamName.tenant(tenantId);
  return {
    what: 'the tenant',
    id: tenantId,
    stream,
    current: async (store) => {
      const { state } = await aggregateFolds.fold(store, stream, tenantDecider);
      return {
        live: state.status === 'active',
        revision: state.status === 'absent' ? null : (state.revision ?? null),
      };
    },
  };
}

function originResource(originId: string): StepResource {
  const stream = streamName.origin(originId);
  return {
    what: 'origin',
    id: originId,
    stream,
    current: async (store) => {
      const { state, revision } = await aggregateFolds.fold(store, stream, originDecider);
      return { live: state.status === 'active', revision };
    },
  };
}

function routeResource(routeId: string): StepResource {
  const stream = streamName.route(routeId);
  return {
    what: 'route',
    id: routeId,
    stream,
    current: async (store) => {
      const { state, revision } = await aggregateFolds.fold(store, stream, routeDecider);
      return { live: state.status === 'active', revision };
    },
  };
}

function resourceOf(step: ChangingStep | RemovingStep, tenantId: string): StepResource {
  switch (step.action) {
    case 'update_tenant':
      return tenantResource(tenantId);
    case 'update_origin':
    case 'remove_origin':
      return originResource(step.id);
    case 'update_route':
    case 'delete_route':
      return routeResource(step.id);
  }
}

const changedMeanwhile = (resource: StepResource, how: 'changed' | 'deleted'): DomainError => {
  const name = resource.what === 'the tenant' ? 'the tenant' : `${resource.what} ${resource.id}`;
  return new DomainError(
    'conflict',
    `${name} was ${how} by another command while this change ran: the steps before it are applied, ` +
      'the rest are not; plan or apply again from the config as it is now',
    undefined,
    { retryAfterSeconds: 1 },
  );
};

/**
 * The If-Match a step changing a resource runs with: the resource's revision, when its last change is at
 * or before `plannedAt` (the position the plan was made from); else 409 `conflict`.
 */
export async function revisionAsPlanned(
  store: EventStore,
  step: ChangingStep,
  tenantId: string,
  plannedAt: bigint,
): Promise<bigint | undefined> {
  const resource = resourceOf(step, tenantId);
  const { live, revision } = await resource.current(store);
  // A tenant deleted meanwhile is not found, as for any command on it: the step answers that itself.
  if (!live && step.action === 'update_tenant') return undefined;
  if (!live) throw changedMeanwhile(resource, 'deleted');
  if (revision === null) return undefined;
  const [last] = await store.readStream(resource.stream, { fromRevision: revision, maxCount: 1 });
  if (last !== undefined && last.position > plannedAt) throw changedMeanwhile(resource, 'changed');
  return revision;
}

/**
 * What a step's failure means for the whole change: a stale If-Match, or the resource gone, is the
 * resource changed by another command meanwhile (409); anything else is the step's own answer.
 */
export async function stepFailure(
  store: EventStore,
  step: ChangingStep,
  tenantId: string,
  error: unknown,
): Promise<unknown> {
  if (!(error instanceof DomainError)) return error;
  const resource = resourceOf(step, tenantId);
  if (error.kind === 'precondition_failed') return changedMeanwhile(resource, 'changed');
  if (
    error.kind === 'not_found' &&
    step.action !== 'update_tenant' &&
    !(await resource.current(store)).live
  ) {
    return changedMeanwhile(resource, 'deleted');
  }
  return error;
}

/**
 * What the failure of a step giving a route an origin the plan kept means: that origin deleted by
 * another command meanwhile (a 404 naming `origin_id`, which the document may not even name) is 409;
 * anything else is the step's own answer.
 */
export async function originReferenceFailure(
  store: EventStore,
  originId: string,
  error: unknown,
): Promise<unknown> {
  if (!(error instanceof DomainError) || error.kind !== 'not_found' || error.field !== 'origin_id')
    return error;
  const origin = originResource(originId);
  return (await origin.current(store)).live ? error : changedMeanwhile(origin, 'deleted');
}

/** Whether a removal's resource was removed by another command first (then the step is done). */
export async function removedMeanwhile(
  store: EventStore,
  step: RemovingStep,
  tenantId: string,
  error: unknown,
): Promise<boolean> {
  if (!(error instanceof DomainError) || error.kind !== 'not_found') return false;
  const { live, revision } = await resourceOf(step, tenantId).current(store);
  return !live && revision !== null;
}
