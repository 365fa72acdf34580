import type { OriginState } from '@vantageedge/shared/domain/events';
import { applyChanges } from './changes.js';
import {
  type Changes,
  type Decider,
  type Decision,
  DomainError,
  type Lifecycle,
  lifecycleEvolve,
  live,
} from './decision.js';

export type Origin = Lifecycle<OriginState>;

export type OriginCommand =
  | { type: 'AddOrigin'; origin: OriginState }
  | { type: 'UpdateOrigin'; changes: Changes<Omit<OriginState, 'origin_id' | 'tenant_id'>> }
  | { type: 'RemoveOrigin' };

function decide(command: OriginCommand, state: Origin): Decision {
  switch (command.type) {
    case 'AddOrigin':
      if (state.status !== 'absent') throw new DomainError('conflict', 'origin already exists');
      return { events: [{ type: 'OriginAdded', data: command.origin }] };
    case 'UpdateOrigin': {
      const { next, changedFields } = applyChanges(live(state, 'origin').data, command.changes);
      if (changedFields.length === 0) return { events: [] };
      return { events: [{ type: 'OriginUpdated', data: { ...next, changed_fields: changedFields } }] };
    }
    case 'RemoveOrigin': {
      const { origin_id, tenant_id } = live(state, 'origin').data;
      return { events: [{ type: 'OriginRemoved', data: { origin_id, tenant_id } }] };
    }
  }
}

export const originDecider: Decider<Origin, OriginCommand> = {
  initialState: () => ({ status: 'absent' }),
  evolve: lifecycleEvolve({ created: 'OriginAdded', changed: 'OriginUpdated', deleted: 'OriginRemoved' }),
  decide,
};
