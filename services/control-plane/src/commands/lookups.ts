import { streamName } from '@vantageedge/shared/domain/events';
import type { Lifecycle } from '../domain/decision.js';
import { type Origin, originDecider } from '../domain/origin.js';
import { type Tenant, tenantDecider } from '../domain/tenant.js';
import { ApiError, notFound } from '../http/errors.js';
import type { CommandContext, CommandDeps } from './context.js';
import { requireAccess } from './context.js';
import { fold } from './handle-command.js';

/**
 * Cross-aggregate checks read the other aggregate's stream from the event store (never the read models,
 * which lag behind), so a command sees every event committed before it started.
 */

export async function loadTenant(deps: CommandDeps, tenantId: string): Promise<Tenant> {
  return fold(tenantDecider, await deps.store.readStream(streamName.tenant(tenantId)));
}

/** 404 (field tenant_id) unless the tenant exists and is not deleted. */
export async function requireLiveTenant(deps: CommandDeps, tenantId: string): Promise<void> {
  const tenant = await loadTenant(deps, tenantId);
  if (tenant.status !== 'active') {
    throw new ApiError(404, 'not_found', 'tenant not found', [
      { field: 'tenant_id', issue: 'no such tenant' },
    ]);
  }
}

/**
 * The origin a route points at must be a live origin of the route's own tenant. An origin of a tenant
 * the caller cannot access is a 403, as every other tenant's resource is.
 */
export async function requireOriginOfTenant(
  deps: CommandDeps,
  ctx: CommandContext,
  originId: string,
  tenantId: string,
): Promise<void> {
  const origin: Origin = fold(originDecider, await deps.store.readStream(streamName.origin(originId)));
  if (origin.status === 'absent' || (origin.status === 'deleted' && origin.data.tenant_id === tenantId)) {
    throw new ApiError(404, 'not_found', 'origin not found', [
      { field: 'origin_id', issue: 'no such origin' },
    ]);
  }
  if (origin.data.tenant_id !== tenantId) {
    await requireAccess(deps, ctx.caller, origin.data.tenant_id, 'read');
    throw new ApiError(400, 'validation_failed', 'the origin belongs to another tenant', [
      { field: 'origin_id', issue: 'must be an origin of the same tenant' },
    ]);
  }
  if (origin.status === 'deleted') {
    throw new ApiError(404, 'not_found', 'origin not found', [
      { field: 'origin_id', issue: 'no such origin' },
    ]);
  }
}

/**
 * For commands on a resource by id: 404 when it never existed, 403 when the caller may not change its
 * tenant (so ids of another tenant never change anything). Deleted resources are 404 (by the decider).
 */
export async function requireWritableResource<Data extends { tenant_id: string }>(
  deps: CommandDeps,
  ctx: CommandContext,
  state: Lifecycle<Data>,
  what: string,
): Promise<Data> {
  if (state.status === 'absent') throw notFound(what);
  await requireAccess(deps, ctx.caller, state.data.tenant_id, 'write');
  return state.data;
}
