import { randomUUID } from 'node:crypto';
import { streamName } from '@vantageedge/shared/domain/events';
import { tenantSettings } from '@vantageedge/shared/domain/gateway-config';
import { DEFAULT_PLATFORM_BASE_DOMAINS } from '@vantageedge/shared/settings/common-settings';
import { tenantDomainsDecider } from '../domain/custom-domain.js';
import { forbidden, notFound } from '../domain/errors.js';
import {
  DEFAULT_RESERVED_SUBDOMAINS,
  labelsNamingBaseDomains,
  requireClaimableSubdomain,
} from '../domain/reserved-subdomains.js';
import { type Tenant, type TenantCommand, tenantDecider } from '../domain/tenant.js';
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
import { requireOwnOidcProvider } from './oidc-provider.js';
import { type ConfiguredUrl, requireAllowedAddresses } from './origin-addresses.js';
import {
  requireCacheBoundAllowed,
  requireSettingsWithinLimits,
  requireShortStrings,
  underTenantLock,
} from './tenant-limits.js';
import { tenantView } from './views.js';

/** The URLs in tenant settings the gateways fetch (the OIDC provider's JWKS). */
function settingsUrls(settings: CreateTenantBody['settings']): ConfiguredUrl[] {
  const jwksUrl = settings?.oidc?.jwks_url;
  return jwksUrl === undefined ? [] : [{ field: 'settings.oidc.jwks_url', url: jwksUrl }];
}

const reservedSubdomains = (deps: CommandDeps): readonly string[] => [
  ...(deps.reservedSubdomains ?? DEFAULT_RESERVED_SUBDOMAINS),
  ...labelsNamingBaseDomains(deps.customDomains?.baseDomains ?? DEFAULT_PLATFORM_BASE_DOMAINS),
];

/** The tenant's own revision: its users share the stream, so the stream's revision is not its ETag. */
const tenantRevision = (state: Tenant): bigint | null =>
  state.status === 'absent' ? null : (state.revision ?? null);

function outcome({ state, position }: HandledCommand<Tenant>): CommandOutcome<TenantResource> {
  const revision = tenantRevision(state);
  if (state.status === 'absent' || revision === null || position === null) throw notFound('tenant', 'id');
  return { resource: tenantView(state), revision, position };
}

export async function createTenant(
  deps: CommandDeps,
  ctx: CommandContext,
  body: CreateTenantBody,
): Promise<CommandOutcome<TenantResource>> {
  requirePlatformAdmin(ctx.caller, 'create tenants');
  requireShortStrings(deps, body);
  requireSettingsWithinLimits(deps, body.settings);
  requireClaimableSubdomain(body.subdomain, reservedSubdomains(deps));
  requireAllowedAddresses(deps.originAddressPolicy, settingsUrls(body.settings));
  requireOwnOidcProvider(deps.clerkIssuer, body.settings?.oidc, 'settings');
  const tenantId = randomUUID();
  const result = await handleCommand({
    store: deps.store,
    snapshotGuard: deps.snapshotGuard,
    commandBudget: deps.commandBudget,
    stream: streamName.tenant(tenantId),
    decider: tenantDecider,
    metadata: () => eventMetadata(deps, ctx, tenantId),
    command: (): TenantCommand => ({
      type: 'CreateTenant',
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

/**
 * Tenant writers may rename and change settings; moving the subdomain or the Clerk org, and raising the
 * cache bound over TENANT_MAX_CACHE_BYTES, is for platform admins.
 */
export async function updateTenant(
  deps: CommandDeps,
  ctx: CommandContext,
  tenantId: string,
  body: UpdateTenantBody,
): Promise<CommandOutcome<TenantResource>> {
  const result = await handleCommand({
    store: deps.store,
    snapshotGuard: deps.snapshotGuard,
    commandBudget: deps.commandBudget,
    stream: streamName.tenant(tenantId),
    decider: tenantDecider,
    ifMatch: ctx.ifMatch,
    revisionOf: tenantRevision,
    metadata: () => eventMetadata(deps, ctx, tenantId),
    command: async (state): Promise<TenantCommand> => {
      if (state.status === 'absent') throw notFound('tenant', 'id');
      await requireAccess(deps, ctx.caller, tenantId, 'write', () => notFound('tenant', 'id'));
      requireShortStrings(deps, body);
      requireSettingsWithinLimits(deps, body.settings);
      if (!ctx.caller.isPlatformAdmin && state.status === 'active') {
        for (const field of ['subdomain', 'clerk_org_id'] as const) {
          if (body[field] !== undefined && body[field] !== state.data[field]) {
            throw forbidden(`only platform admins may change ${field}`, field, 'platform admins only');
          }
        }
        requireCacheBoundAllowed(
          deps,
          ctx.caller,
          state.data.settings.cache?.max_bytes,
          body.settings?.cache?.max_bytes,
        );
      }
      // Only a new subdomain: a tenant keeps one reserved after it took it.
      if (
        body.subdomain !== undefined &&
        state.status === 'active' &&
        body.subdomain !== state.data.subdomain
      ) {
        requireClaimableSubdomain(body.subdomain, reservedSubdomains(deps));
      }
      requireAllowedAddresses(deps.originAddressPolicy, settingsUrls(body.settings));
      requireOwnOidcProvider(deps.clerkIssuer, body.settings?.oidc, 'settings');
      const { clerk_org_id, ...rest } = body;
      return {
        type: 'UpdateTenant',
        changes: { ...rest, ...(clerk_org_id !== undefined ? { clerk_org_id } : {}) },
      };
    },
  });
  return outcome(result);
}

/**
 * Deleting a tenant stops its traffic and keys (the snapshot projector drops it) and frees its
 * subdomain, its Clerk org and its custom domains (removed with it, so each name is free again), and
 * what the shared cache store would otherwise keep of it for ever. Under the tenant's lock, which every
 * create of a resource in a stream of its own holds from its check that the tenant is live to its
 * append (`withCountedCreate`).
 */
export async function deleteTenant(
  deps: CommandDeps,
  ctx: CommandContext,
  tenantId: string,
): Promise<CommandOutcome<TenantResource>> {
  // A tenant the caller cannot see is not found, as an unknown one; only one it sees is refused.
  if (!ctx.caller.isPlatformAdmin)
    await requireAccess(deps, ctx.caller, tenantId, 'read', () => notFound('tenant', 'id'));
  requirePlatformAdmin(ctx.caller, 'delete tenants');
  const result = await underTenantLock(deps, tenantId, () =>
    handleCommand({
      store: deps.store,
      snapshotGuard: deps.snapshotGuard,
      commandBudget: deps.commandBudget,
      stream: streamName.tenant(tenantId),
      decider: tenantDomainsDecider,
      ifMatch: ctx.ifMatch,
      revisionOf: (state) => tenantRevision(state.tenant),
      metadata: () => eventMetadata(deps, ctx, tenantId),
      command: async (state) => {
        // A platform admin's command on a tenant counts against that tenant's command limit too.
        if (state.tenant.status !== 'absent') await deps.commandBudget?.charge(tenantId);
        return { type: 'DeleteTenant' as const };
      },
    }),
  );
  // After the delete is recorded. Best effort, like a deleted route's generation: the tenant is deleted
  // either way, and a store outage leaves its keys behind (each gateway replica forgets the accounting
  // again once the tombstone reached it, after its own last write of the tenant).
  await deps.cachePurger?.forgetTenant?.(tenantId).catch(() => {});
  return outcome({ ...result, state: result.state.tenant });
}
