import type { OriginState, RouteState } from '@vantageedge/shared/domain/events';
import { streamName } from '@vantageedge/shared/domain/events';
import { originDecider } from '../domain/origin.js';
import { restoreDecider } from '../domain/restore.js';
import { requireCoherentRoute, routeDecider } from '../domain/route.js';
import type { OriginResource, RouteResource } from '../schemas/resources.js';
import {
  type CommandContext,
  type CommandDeps,
  type CommandOutcome,
  eventMetadata,
  requireAccess,
} from './context.js';
import { handleCommand } from './handle-command.js';
import { requireClientCertificateOfTenant, requireLiveTenant } from './lookups.js';
import { originTargetUrls, requireAllowedAddresses } from './origin-addresses.js';
import { outcomeOf } from './outcome.js';
import { requireNewRouteFits } from './route-commands.js';
import {
  requireRoomFor,
  requireRoomForTargets,
  requireShortStrings,
  requireTargetCount,
} from './tenant-limits.js';
import { originView, routeView } from './views.js';

/**
 * Re-creating a deleted origin or route under its own id, with the checks its create command makes
 * (write access, a live tenant, the tenant's limits, today's origin address policy, a live client
 * certificate of the origin's own tenant, a live origin of the same tenant for a route, the rules
 * between a route's fields).
 */

const restoreOriginDecider = restoreDecider<OriginState>(originDecider, {
  name: 'origin',
  created: 'OriginCreated',
});
const restoreRouteDecider = restoreDecider<RouteState>(routeDecider, {
  name: 'route',
  created: 'RouteCreated',
  validate: requireCoherentRoute,
});

export async function restoreOrigin(
  deps: CommandDeps,
  ctx: CommandContext,
  origin: OriginState,
): Promise<CommandOutcome<OriginResource>> {
  await requireAccess(deps, ctx.caller, origin.tenant_id, 'write');
  await requireLiveTenant(deps, origin.tenant_id);
  requireShortStrings(deps, origin);
  requireTargetCount(deps, origin.targets);
  await requireRoomFor(deps, 'origins', origin.tenant_id);
  await requireRoomForTargets(deps, origin.tenant_id, origin.targets.length, origin.origin_id);
  // Targets allowed when the origin was deleted may not be any more.
  requireAllowedAddresses(deps.originAddressPolicy, originTargetUrls(origin));
  // The certificate it named may have been deleted since; a document may name any id. Restores run in a
  // config apply or rollback, under the tenant's lock that a certificate's deletion takes too.
  const clientCertificateId = origin.tls?.client_certificate_id;
  if (clientCertificateId)
    await requireClientCertificateOfTenant(deps, clientCertificateId, origin.tenant_id);
  const result = await handleCommand({
    store: deps.store,
    snapshotGuard: deps.snapshotGuard,
    commandBudget: deps.commandBudget,
    stream: streamName.origin(origin.origin_id),
    decider: restoreOriginDecider,
    metadata: () => eventMetadata(deps, ctx, origin.tenant_id),
    command: () => ({ type: 'Restore' as const, data: origin }),
  });
  return outcomeOf('origin', result, originView);
}

export async function restoreRoute(
  deps: CommandDeps,
  ctx: CommandContext,
  route: RouteState,
): Promise<CommandOutcome<RouteResource>> {
  await requireAccess(deps, ctx.caller, route.tenant_id, 'write');
  await requireLiveTenant(deps, route.tenant_id);
  await requireNewRouteFits(deps, ctx, route);
  const result = await handleCommand({
    store: deps.store,
    snapshotGuard: deps.snapshotGuard,
    commandBudget: deps.commandBudget,
    stream: streamName.route(route.route_id),
    decider: restoreRouteDecider,
    metadata: () => eventMetadata(deps, ctx, route.tenant_id),
    command: () => ({ type: 'Restore' as const, data: route }),
  });
  return outcomeOf('route', result, routeView);
}
