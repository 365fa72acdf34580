import type { RouteState } from '@vantageedge/shared/domain/events';
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

export type Route = Lifecycle<RouteState>;

export type RouteCommand =
  | { type: 'CreateRoute'; route: RouteState }
  | { type: 'UpdateRoute'; changes: Changes<Omit<RouteState, 'route_id' | 'tenant_id'>> }
  | { type: 'DeleteRoute' };

const USER_TOKEN_MODES: ReadonlySet<string> = new Set(['jwt_required', 'jwt_or_apikey']);

/** allow_any_authenticated_user widens who may call with a user token: only meaningful on jwt modes. */
function requireCoherentAuth(route: RouteState): void {
  if (route.allow_any_authenticated_user && !USER_TOKEN_MODES.has(route.auth_mode)) {
    throw new DomainError(
      'invalid',
      `allow_any_authenticated_user applies to jwt_required and jwt_or_apikey routes, not ${route.auth_mode}`,
      'allow_any_authenticated_user',
    );
  }
}

function decide(command: RouteCommand, state: Route): Decision {
  switch (command.type) {
    case 'CreateRoute':
      if (state.status !== 'absent') throw new DomainError('conflict', 'route already exists');
      requireCoherentAuth(command.route);
      return { events: [{ type: 'RouteCreated', data: command.route }] };
    case 'UpdateRoute': {
      const { next, changedFields } = applyChanges(live(state, 'route').data, command.changes);
      if (changedFields.length === 0) return { events: [] };
      requireCoherentAuth(next);
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
  evolve: lifecycleEvolve({ created: 'RouteCreated', changed: 'RouteUpdated', deleted: 'RouteDeleted' }),
  decide,
};
