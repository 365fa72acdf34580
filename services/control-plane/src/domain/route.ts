import type { RouteState } from '@vantageedge/shared/domain/events';
import type { Lifecycle } from './decision.js';
import { invalid } from './errors.js';
import { type ResourceCommand, resourceDecider } from './resource-decider.js';
import { requireCoherentRoutePolicies } from './route-policy-rules.js';

export type Route = Lifecycle<RouteState>;
export type RouteCommand = ResourceCommand<RouteState, 'route_id'>;

const USER_TOKEN_MODES: ReadonlySet<string> = new Set(['jwt_required', 'jwt_or_apikey']);

/**
 * allow_any_authenticated_user widens who may call with a user token: only meaningful on jwt modes;
 * required_scopes narrow who may call with a credential: meaningless on a public route.
 */
function requireCoherentAuth(route: RouteState): void {
  if (route.allow_any_authenticated_user && !USER_TOKEN_MODES.has(route.auth_mode)) {
    throw invalid(
      `allow_any_authenticated_user applies to jwt_required and jwt_or_apikey routes, not ${route.auth_mode}`,
      'allow_any_authenticated_user',
    );
  }
  if (route.auth_mode === 'public' && (route.required_scopes?.length ?? 0) > 0) {
    throw invalid(
      'a public route checks no credential, so its scopes would never be required: choose an auth_mode that reads one, or remove required_scopes',
      'required_scopes',
    );
  }
}

/** The rules between a route's fields, on the whole route a create, an update or a restore leaves. */
export function requireCoherentRoute(route: RouteState): void {
  requireCoherentAuth(route);
  requireCoherentRoutePolicies(route);
}

export const routeDecider = resourceDecider<RouteState, 'route_id'>({
  name: 'route',
  idKey: 'route_id',
  created: 'RouteCreated',
  changed: 'RouteUpdated',
  deleted: 'RouteDeleted',
  validate: requireCoherentRoute,
});
