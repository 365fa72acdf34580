import { randomUUID } from 'node:crypto';
import { streamName } from '@vantageedge/shared/domain/events';
import { tenantSettings } from '@vantageedge/shared/domain/gateway-config';
import { tenantDomainsDecider } from '../domain/custom-domain.js';
import type { Tenant } from '../domain/tenant.js';
import { tenantDecider } from '../domain/tenant.js';
import { ApiError, notFound } from '../http/errors.js';
import type { CreateTenantBody, UpdateTenantBody } from '../schemas/requests.js';
import type { TenantResource } from '../schemas/resources.js';
import {
  type CommandContext,
  type CommandDeps,
  type CommandOutcome,
  eventMetadata,
  requireAccess,
  requirePlatformAdmin,
} from './context.js';
import { type HandledCommand, handleCommand } from './handle-command.js';
import { requireSettingsWithinLimits, requireShortStrings } from './tenant-limits.js';
import { tenantView } from './views.js';

function outcome(result: HandledCommand<Tenant>): CommandOutcome<TenantResource> {
  if (result.state.status === 'absent' || result.revision === null || result.position === null) {
    throw notFound('tenant');
  }
  return { resource: tenantView(result.state), revision: result.revision, position: result.position };
}

export async function createTenant(
  deps: CommandDeps,
  ctx: CommandContext,
  body: CreateTenantBody,
): Promise<CommandOutcome<TenantResource>> {
  requirePlatformAdmin(ctx.caller, 'create tenants');
  requireShortStrings(deps, body);
  requireSettingsWithinLimits(deps, body.settings);
  const tenantId = randomUUID();
  const result = await handleCommand({
    store: deps.store,
    stream: streamName.tenant(tenantId),
    decider: tenantDecider,
    metadata: () => eventMetadata(deps, ctx, tenantId),
    command: () => ({
      type: 'CreateTenant' as const,
      tenant: {
        tenant_id: tenantId,
        name: body.name,
        subdomain: body.subdomain,
        clerk_org_id: body.clerk_org_id ?? null,
        settings: body.settings ?? tenantSettings.parse({}),
      },
    }),
  });
  return outcome(result);
}

/** Tenant writers may rename and change settings; moving the subdomain or the Clerk org is for platform admins. */
export async function updateTenant(
  deps: CommandDeps,
  ctx: CommandContext,
  tenantId: string,
  body: UpdateTenantBody,
): Promise<CommandOutcome<TenantResource>> {
  const result = await handleCommand({
    store: deps.store,
    stream: streamName.tenant(tenantId),
    decider: tenantDecider,
    ifMatch: ctx.ifMatch,
    metadata: () => eventMetadata(deps, ctx, tenantId),
    command: async (state) => {
      if (state.status === 'absent') throw notFound('tenant');
      await requireAccess(deps, ctx.caller, tenantId, 'write');
      requireShortStrings(deps, body);
      requireSettingsWithinLimits(deps, body.settings);
      if (!ctx.caller.isPlatformAdmin && state.status === 'active') {
        for (const field of ['subdomain', 'clerk_org_id'] as const) {
          if (body[field] !== undefined && body[field] !== state.data[field]) {
            throw new ApiError(403, 'forbidden', `only platform admins may change ${field}`, [
              { field, issue: 'platform admins only' },
            ]);
          }
        }
      }
      const { clerk_org_id, ...rest } = body;
      return {
        type: 'UpdateTenant' as const,
        changes: { ...rest, ...(clerk_org_id !== undefined ? { clerk_org_id } : {}) },
      };
    },
  });
  return outcome(result);
}

/**
 * Deleting a tenant stops its traffic and keys (the snapshot projector drops it) and frees its
 * subdomain, its Clerk org and its custom domains (removed with it, so each name is free again).
 */
export async function deleteTenant(
  deps: CommandDeps,
  ctx: CommandContext,
  tenantId: string,
): Promise<CommandOutcome<TenantResource>> {
  requirePlatformAdmin(ctx.caller, 'delete tenants');
  const result = await handleCommand({
    store: deps.store,
    stream: streamName.tenant(tenantId),
    decider: tenantDomainsDecider,
    ifMatch: ctx.ifMatch,
    metadata: () => eventMetadata(deps, ctx, tenantId),
    command: () => ({ type: 'DeleteTenant' as const }),
  });
  return outcome({ ...result, state: result.state.tenant });
}
