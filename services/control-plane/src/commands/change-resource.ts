import type { Decider, Lifecycle } from '../domain/decision.js';
import { type CommandContext, type CommandDeps, eventMetadata, tenantOf } from './context.js';
import { type HandledCommand, handleCommand } from './handle-command.js';
import { requireWritableResource } from './lookups.js';

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
 * exist or its tenant is one the caller cannot see, 403 when the caller sees the tenant but may not
 * write to it, 412 on a stale If-Match; the events are recorded under the resource's tenant.
 */
export function changeResource<Data extends { tenant_id: string }, Command>(
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
