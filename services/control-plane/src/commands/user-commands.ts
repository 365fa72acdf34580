import { randomUUID } from 'node:crypto';
import { reservation, streamName } from '@vantageedge/shared/domain/events';
import { notFound } from '../domain/errors.js';
import {
  type Actor,
  liveMemberCount,
  memberOf,
  NO_MEMBERS,
  type Tenant,
  type TenantCommand,
  tenantDecider,
  tenantWithEarlierMembers,
} from '../domain/tenant.js';
import { userDecider } from '../domain/user.js';
import type { CreateUserBody, UpdateUserBody } from '../schemas/requests.js';
import type { UserResource } from '../schemas/resources.js';
import {
  type CommandContext,
  type CommandDeps,
  type CommandOutcome,
  eventMetadata,
  requireAccess,
} from './context.js';
import { fold, type HandledCommand, handleCommand } from './handle-command.js';
import { requireRoomForMember, withCountedCreate } from './tenant-limits.js';
import { userView } from './views.js';

/**
 * Users are members of their tenant and live in its stream (domain/tenant.ts): every user command is
 * a command on the tenant aggregate, decided with all of the tenant's members in view.
 */

const TENANT_STREAM = /^tenant-(.+)$/;

/** The tenant a user belongs to: the tenant stream holding `user:<id>`, or the user's own older stream. */
async function tenantOfUser(deps: CommandDeps, userId: string): Promise<string> {
  const holder = await deps.store.reservationHolder(reservation.user(userId));
  const tenantId = holder === null ? undefined : TENANT_STREAM.exec(holder)?.[1];
  if (tenantId !== undefined) return tenantId;
  const legacy = fold(userDecider, await deps.store.readStream(streamName.user(userId)));
  if (legacy.status === 'absent') throw notFound('user', 'id');
  return legacy.data.tenant_id;
}

function actorOf(ctx: CommandContext): Actor {
  return { clerkUserId: ctx.caller.userId, isPlatformAdmin: ctx.caller.isPlatformAdmin };
}

function outcome(userId: string, { state, position }: HandledCommand<Tenant>): CommandOutcome<UserResource> {
  const user = memberOf(state, userId);
  if (user.status === 'absent' || user.revision === undefined || position === null)
    throw notFound('user', 'id');
  return { resource: userView(user), revision: user.revision, position };
}

/** Runs a member command on the tenant's stream, with the members recorded before it laid under it. */
function onTenant(
  deps: CommandDeps,
  ctx: CommandContext,
  tenantId: string,
  userId: string,
  command: (state: Tenant) => Promise<TenantCommand>,
) {
  return handleCommand({
    store: deps.store,
    snapshotGuard: deps.snapshotGuard,
    commandBudget: deps.commandBudget,
    stream: streamName.tenant(tenantId),
    decider: tenantDecider,
    ifMatch: ctx.ifMatch,
    initialState: async () => {
      const earlier = await deps.legacyUsers.membersOf(tenantId);
      return earlier === NO_MEMBERS ? undefined : tenantWithEarlierMembers(earlier);
    },
    revisionOf: (state) => {
      const user = memberOf(state, userId);
      return user.status === 'absent' ? null : (user.revision ?? null);
    },
    metadata: () => eventMetadata(deps, ctx, tenantId),
    command,
  });
}

export async function createUser(
  deps: CommandDeps,
  ctx: CommandContext,
  body: CreateUserBody,
): Promise<CommandOutcome<UserResource>> {
  await requireAccess(deps, ctx.caller, body.tenant_id, 'write');
  const userId = randomUUID();
  // Under the tenant's lock, as every counted create: adds sent at once are counted one after another
  // (each a 201 or a 422), not raced on the stream's revision.
  const result = await withCountedCreate(deps, ctx.caller, body.tenant_id, () =>
    onTenant(deps, ctx, body.tenant_id, userId, async (state) => {
      if (state.status !== 'active') throw notFound('tenant', 'tenant_id');
      requireRoomForMember(deps, liveMemberCount(state));
      return { type: 'CreateUser', user: { user_id: userId, ...body }, actor: actorOf(ctx) };
    }),
  );
  return outcome(userId, result);
}

export async function changeUserRole(
  deps: CommandDeps,
  ctx: CommandContext,
  userId: string,
  body: UpdateUserBody,
): Promise<CommandOutcome<UserResource>> {
  const tenantId = await tenantOfUser(deps, userId);
  const result = await onTenant(deps, ctx, tenantId, userId, async (state) => {
    if (memberOf(state, userId).status === 'absent') throw notFound('user', 'id');
    await requireAccess(deps, ctx.caller, tenantId, 'write', () => notFound('user', 'id'));
    return { type: 'ChangeUserRole', userId, role: body.role, actor: actorOf(ctx) };
  });
  return outcome(userId, result);
}

export async function deleteUser(
  deps: CommandDeps,
  ctx: CommandContext,
  userId: string,
): Promise<CommandOutcome<UserResource>> {
  const tenantId = await tenantOfUser(deps, userId);
  const result = await onTenant(deps, ctx, tenantId, userId, async (state) => {
    if (memberOf(state, userId).status === 'absent') throw notFound('user', 'id');
    await requireAccess(deps, ctx.caller, tenantId, 'write', () => notFound('user', 'id'));
    return { type: 'DeleteUser', userId, actor: actorOf(ctx) };
  });
  return outcome(userId, result);
}
