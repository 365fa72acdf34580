import type { Decider, Lifecycle } from '../domain/decision.js';
import { type CommandContext, type CommandDeps, eventMetadata, tenantOf } from './context.js';
import { type HandledCommand, handleCommand } from './handle-command.js';
import { requireWritableResource, writableTenantOf } from './lookups.js';
import { underTenantLock } from './tenant-limits.js';

export interface ResourceChange<Data extends { tenant_id: string }, Command> {
  stream: string;
  decider: Decider<Lifecycle<Data>, Command>;
  /** How the resource is named in a 404 (`origin`, `api key`, …). */
  what: string;
  /** The command, from the resource as it is now (further checks go here). */
  command: (current: Data) => Promise<Command> | Command;
}

/**
 * A command on an existing resource of a tenant (update, delete, revoke, …): 404 when it does not
 * exist, its tenant is one the caller cannot see or its tenant was deleted, 403 when the caller sees
 * the tenant but may not write to it, 412 on a stale If-Match; the events are recorded under the
 * resource's tenant.
 *
 * Under the tenant's lock (once the caller may write the tenant: another tenant's caller takes no lock
 * of it), which the tenant's deletion takes too: the tenant is found live and the events appended
 * before the deletion, or the command is a 404 after it that appends nothing. The lock also orders the
 * updates compared with the tenant's other resources (an origin's targets, a route's match, a
 * certificate an origin names) with the creates and config applies that count them.
 */
export async function changeResource<Data extends { tenant_id: string }, Command>(
  deps: CommandDeps,
  ctx: CommandContext,
  change: ResourceChange<Data, Command>,
): Promise<HandledCommand<Lifecycle<Data>>> {
  const run = () => decideChange(deps, ctx, change);
  // A config apply's or rollback's steps run under the lock already.
  if (deps.countedByPlan) return run();
  const tenantId = await writableTenantOf(deps, ctx, change.stream, change.decider);
  return tenantId === null ? run() : underTenantLock(deps, tenantId, run);
}

function decideChange<Data extends { tenant_id: string }, Command>(
  deps: CommandDeps,
  ctx: CommandContext,
  change: ResourceChange<Data, Command>,
): Promise<HandledCommand<Lifecycle<Data>>> {
  return handleCommand({
    store: deps.store,
    snapshotGuard: deps.snapshotGuard,
    commandBudget: deps.commandBudget,
    stream: change.stream,
    decider: change.decider,
    ifMatch: ctx.ifMatch,
    metadata: (state) => eventMetadata(deps, ctx, tenantOf(state)),
    command: async (state) => change.command(await requireWritableResource(deps, ctx, state, change.what)),
  });
}
