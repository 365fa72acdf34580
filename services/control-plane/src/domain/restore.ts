import type { ControlPlaneEventType } from '@vantageedge/shared/domain/events';
import type { Decider, DomainEvent, Lifecycle } from './decision.js';
import { conflict, notFound } from './errors.js';

/**
 * Bringing a deleted origin or route back under its own id (a config rollback or a document that
 * names it): the same stream, folded by the resource's own evolve, gets its creation event again with
 * the restored data. Only a deleted resource of the same tenant can be restored; a live one is a
 * conflict (update it instead), one that never existed is not found. The restored data meets the
 * resource's rules across fields as a created one does (`validate`): a document may write any field,
 * and a recorded route may predate a rule.
 */
export type RestoreCommand<Data> = { type: 'Restore'; data: Data };

export function restoreDecider<Data extends { tenant_id: string }>(
  resource: Pick<Decider<Lifecycle<Data>, unknown>, 'initialState' | 'evolve'>,
  spec: { name: string; created: ControlPlaneEventType; validate?: (data: Data) => void },
): Decider<Lifecycle<Data>, RestoreCommand<Data>> {
  return {
    initialState: resource.initialState,
    evolve: resource.evolve,
    decide(command, state) {
      if (state.status === 'absent' || state.data.tenant_id !== command.data.tenant_id)
        throw notFound(spec.name);
      if (state.status === 'active') throw conflict(`${spec.name} exists: change it instead of restoring it`);
      spec.validate?.(command.data);
      // The creation event carries the resource's whole state, as when it was first created.
      return { events: [{ type: spec.created, data: command.data } as DomainEvent] };
    },
  };
}
