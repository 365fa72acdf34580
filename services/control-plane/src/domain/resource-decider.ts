import type { ControlPlaneEventMap, ControlPlaneEventType } from '@vantageedge/shared/domain/events';
import { applyChanges } from './changes.js';
import {
  type Changes,
  type Decider,
  type Decision,
  type DomainEvent,
  type Lifecycle,
  lifecycleEvolve,
  live,
} from './decision.js';
import { conflict } from './errors.js';

/**
 * The one decider of every tenant-owned resource whose events carry its whole state (origins, routes):
 * create once, update by replacing top-level fields (no event when nothing changes), delete to a
 * tombstone. Each resource names its id field and its three event types.
 */

/** A resource's state: its id field, its tenant, and its configuration. */
type ResourceData<IdKey extends string> = { [Key in IdKey]: string } & { tenant_id: string };

export type ResourceCommand<Data, IdKey extends keyof Data> =
  | { type: 'Create'; data: Data }
  | { type: 'Update'; changes: Changes<Omit<Data, IdKey | 'tenant_id'>> }
  | { type: 'Delete' };

/** Event types whose data is exactly `Data`, `Data` + changed_fields, and the id + tenant of a tombstone. */
type EventWithData<Data> = {
  [Type in ControlPlaneEventType]: ControlPlaneEventMap[Type] extends Data
    ? Data extends ControlPlaneEventMap[Type]
      ? Type
      : never
    : never;
}[ControlPlaneEventType];

export interface ResourceSpec<Data, IdKey extends string> {
  /** For messages: "origin not found". */
  name: string;
  idKey: IdKey;
  created: EventWithData<Data>;
  changed: EventWithData<Data & { changed_fields: string[] }>;
  deleted: EventWithData<ResourceData<IdKey>>;
  /** Rules across fields, checked on the state a create or an update would leave. */
  validate?: (data: Data) => void;
}

export function resourceDecider<Data extends ResourceData<IdKey>, IdKey extends keyof Data & string>(
  spec: ResourceSpec<Data, IdKey>,
): Decider<Lifecycle<Data>, ResourceCommand<Data, IdKey>> {
  // The event types were checked against their data shapes above; the union cannot see it.
  const event = (type: ControlPlaneEventType, data: object) => ({ type, data }) as DomainEvent;
  return {
    initialState: () => ({ status: 'absent' }),
    evolve: lifecycleEvolve<Data>({ created: spec.created, changed: spec.changed, deleted: spec.deleted }),
    decide(command, state): Decision {
      switch (command.type) {
        case 'Create':
          if (state.status !== 'absent') throw conflict(`${spec.name} already exists`);
          spec.validate?.(command.data);
          return { events: [event(spec.created, command.data)] };
        case 'Update': {
          const current = live(state, spec.name).data;
          const { next, changedFields } = applyChanges(current, command.changes as Changes<Data>);
          if (changedFields.length === 0) return { events: [] };
          spec.validate?.(next);
          return { events: [event(spec.changed, { ...next, changed_fields: changedFields })] };
        }
        case 'Delete': {
          const current = live(state, spec.name).data;
          return {
            events: [
              event(spec.deleted, { [spec.idKey]: current[spec.idKey], tenant_id: current.tenant_id }),
            ],
          };
        }
      }
    },
  };
}
