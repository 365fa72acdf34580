import { randomUUID } from 'node:crypto';
import { streamName } from '@vantageedge/shared/domain/events';
import { type User, userDecider } from '../domain/user.js';
import { notFound } from '../http/errors.js';
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
import { requireLiveTenant, requireWritableResource } from './lookups.js';
import { countOtherOwners, withTenantUsersLock } from './tenant-owners.js';
import { userView } from './views.js';

function outcome(result: HandledCommand<User>): CommandOutcome<UserResource> {
  if (result.state.status === 'absent' || result.revision === null || result.position === null) {
    throw notFound('user');
  }
  return { resource: userView(result.state), revision: result.revision, position: result.position };
}

export async function addUser(
  deps: CommandDeps,
  ctx: CommandContext,
  body: CreateUserBody,
): Promise<CommandOutcome<UserResource>> {
  await requireAccess(deps, ctx.caller, body.tenant_id, 'write');
  await requireLiveTenant(deps, body.tenant_id);
  const userId = randomUUID();
  const result = await handleCommand({
    store: deps.store,
    stream: streamName.user(userId),
    decider: userDecider,
    metadata: () => eventMetadata(deps, ctx, body.tenant_id),
    command: () => ({ type: 'AddUser' as const, user: { user_id: userId, ...body } }),
  });
  return outcome(result);
}

/** Role changes and removals run under the tenant's user lock so the last owner is never lost. */
async function withUserOfTenant<T>(
  deps: CommandDeps,
  userId: string,
  fn: (tenantId: string) => Promise<T>,
): Promise<T> {
  const user = fold(userDecider, await deps.store.readStream(streamName.user(userId)));
  if (user.status === 'absent') throw notFound('user');
  return withTenantUsersLock(deps.pool, user.data.tenant_id, () => fn(user.data.tenant_id));
}

export async function changeUserRole(
  deps: CommandDeps,
  ctx: CommandContext,
  userId: string,
  body: UpdateUserBody,
): Promise<CommandOutcome<UserResource>> {
  return withUserOfTenant(deps, userId, async (tenantId) => {
    const result = await handleCommand({
      store: deps.store,
      stream: streamName.user(userId),
      decider: userDecider,
      ifMatch: ctx.ifMatch,
      metadata: () => eventMetadata(deps, ctx, tenantId),
      command: async (state) => {
        const user = await requireWritableResource(deps, ctx, state, 'user');
        const demotesOwner = user.role === 'owner' && body.role !== 'owner';
        const otherOwners = demotesOwner ? await countOtherOwners(deps.store, tenantId, userId) : 1;
        return { type: 'ChangeUserRole' as const, role: body.role, otherOwners };
      },
    });
    return outcome(result);
  });
}

export async function removeUser(
  deps: CommandDeps,
  ctx: CommandContext,
  userId: string,
): Promise<CommandOutcome<UserResource>> {
  return withUserOfTenant(deps, userId, async (tenantId) => {
    const result = await handleCommand({
      store: deps.store,
      stream: streamName.user(userId),
      decider: userDecider,
      ifMatch: ctx.ifMatch,
      metadata: () => eventMetadata(deps, ctx, tenantId),
      command: async (state) => {
        const user = await requireWritableResource(deps, ctx, state, 'user');
        const otherOwners = user.role === 'owner' ? await countOtherOwners(deps.store, tenantId, userId) : 1;
        return { type: 'RemoveUser' as const, otherOwners };
      },
    });
    return outcome(result);
  });
}
