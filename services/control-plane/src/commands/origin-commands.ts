import { randomUUID } from 'node:crypto';
import { streamName } from '@vantageedge/shared/domain/events';
import {
  circuitBreaker,
  healthCheck,
  loadBalancing,
  originTls,
} from '@vantageedge/shared/domain/gateway-config';
import { type OriginCommand, originDecider } from '../domain/origin.js';
import type { CreateOriginBody, UpdateOriginBody } from '../schemas/requests.js';
import type { OriginResource } from '../schemas/resources.js';
import { changeResource } from './change-resource.js';
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
import {
  requireRoomFor,
  requireRoomForTargets,
  requireShortStrings,
  requireTargetCount,
  withCountedCreate,
} from './tenant-limits.js';
import { originView } from './views.js';

export async function createOrigin(
  deps: CommandDeps,
  ctx: CommandContext,
  body: CreateOriginBody,
): Promise<CommandOutcome<OriginResource>> {
  await requireAccess(deps, ctx.caller, body.tenant_id, 'write');
  await requireLiveTenant(deps, body.tenant_id);
  requireShortStrings(deps, body);
  requireTargetCount(deps, body.targets);
  const originId = randomUUID();
  const result = await withCountedCreate(deps, ctx.caller, body.tenant_id, async () => {
    await requireRoomFor(deps, 'origins', body.tenant_id);
    await requireRoomForTargets(deps, body.tenant_id, body.targets?.length ?? 1);
    requireAllowedAddresses(deps.originAddressPolicy, originTargetUrls(body));
    // Under the tenant's lock, as the certificate's deletion: it cannot be deleted before this append.
    const clientCertificateId = body.tls?.client_certificate_id;
    if (clientCertificateId)
      await requireClientCertificateOfTenant(deps, clientCertificateId, body.tenant_id);
    return handleCommand({
      store: deps.store,
      snapshotGuard: deps.snapshotGuard,
      commandBudget: deps.commandBudget,
      stream: streamName.origin(originId),
      decider: originDecider,
      metadata: () => eventMetadata(deps, ctx, body.tenant_id),
      command: (): OriginCommand => ({
        type: 'Create',
        data: {
          origin_id: originId,
          tenant_id: body.tenant_id,
          name: body.name,
          // A single url is a one-target origin.
          targets: body.targets ?? [{ url: body.url ?? '', weight: 1 }],
          health_check_path: body.health_check_path,
          timeout_seconds: body.timeout_seconds,
          load_balancing: body.load_balancing ?? loadBalancing.parse({}),
          health_check: body.health_check ?? healthCheck.parse({}),
          circuit_breaker: body.circuit_breaker ?? circuitBreaker.parse({}),
          tls: body.tls ?? originTls.parse({}),
          tags: body.tags,
        },
      }),
    });
  });
  return outcomeOf('origin', result, originView);
}

export async function updateOrigin(
  deps: CommandDeps,
  ctx: CommandContext,
  originId: string,
  body: UpdateOriginBody,
): Promise<CommandOutcome<OriginResource>> {
  // New targets are counted against TENANT_MAX_TARGETS, and a client certificate must outlive the
  // update (its deletion checks the origins): both under the tenant's lock, which changeResource takes.
  const result = await changeResource(deps, ctx, {
    stream: streamName.origin(originId),
    decider: originDecider,
    what: 'origin',
    command: async (current): Promise<OriginCommand> => {
      requireShortStrings(deps, body);
      requireTargetCount(deps, body.targets);
      if (body.targets !== undefined || body.url !== undefined) {
        await requireRoomForTargets(
          deps,
          current.tenant_id,
          body.targets?.length ?? 1,
          current.origin_id,
          current.targets.length,
        );
      }
      requireAllowedAddresses(deps.originAddressPolicy, originTargetUrls(body));
      const clientCertificateId = body.tls?.client_certificate_id;
      if (clientCertificateId) {
        await requireClientCertificateOfTenant(deps, clientCertificateId, current.tenant_id);
      }
      const { url, ...changes } = body;
      return {
        type: 'Update',
        changes: url !== undefined ? { ...changes, targets: [{ url, weight: 1 }] } : changes,
      };
    },
  });
  return outcomeOf('origin', result, originView);
}

export async function deleteOrigin(
  deps: CommandDeps,
  ctx: CommandContext,
  originId: string,
): Promise<CommandOutcome<OriginResource>> {
  const result = await changeResource(deps, ctx, {
    stream: streamName.origin(originId),
    decider: originDecider,
    what: 'origin',
    command: (): OriginCommand => ({ type: 'Delete' }),
  });
  return outcomeOf('origin', result, originView);
}
