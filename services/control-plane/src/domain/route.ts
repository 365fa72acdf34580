import type { RouteState } from '../../../../shared/src/domain/events.js';
import { applyChanges } from './changes.js';
import {
  type Changes,
  changed,
  created,
  type Decider,
  type Decision,
  DomainError,
  deleted,
  type Lifecycle,
  live,
} from './decision.js';

export type Route = Lifecycle<RouteState>;

export type RouteCommand =
  | { type: 'CreateRoute'; route: RouteState }
  | { type: 'UpdateRoute'; changes: Changes<Omit<RouteState, 'route_id' | 'tenant_id'>> }
  | { type: 'DeleteRoute' };

function decide(command: RouteCommand, state: Route): Decision {
  switch (command.type) {
    case 'CreateRoute':
      if (state.status !== 'absent') throw new DomainError('conflict', 'route already exists');
      return { events: [{ type: 'RouteCreated', data: command.route }] };
    case 'UpdateRoute': {
      const { next, changedFields } = applyChanges(live(state, 'route').data, command.changes);
      if (changedFields.length === 0) return { events: [] };
      return { events: [{ type: 'RouteUpdated', data: { ...next, changed_fields: changedFields } }] };
    }
    case 'DeleteRoute': {
      const { route_id, tenant_id } = live(state, 'route').data;
      return { events: [{ type: 'RouteDeleted', data: { route_id, tenant_id } }] };
    }
  }
}

export const routeDecider: Decider<Route, RouteCommand> = {
  initialState: () => ({ status: 'absent' }),
  evolve(state, event) {
    switch (event.type) {
      case 'RouteCreated':
        return created(event.data, event.metadata.occurred_at);
      case 'RouteUpdated': {
        const { changed_fields: _, ...data } = event.data;
        return changed(state, data, event.metadata.occurred_at);
      }
      case 'RouteDeleted':
        return deleted(state, event.metadata.occurred_at);
      default:
        return state;
    }
  },
  decide,
};
