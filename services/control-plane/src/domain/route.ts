import type { RouteState } from '@vantageedge/shared/domain/events';
import type { Lifecycle } from './decision.js';
import { type ResourceCommand, resourceDecider } from './resource-decider.js';

export type Route = Lifecycle<RouteState>;
export type RouteCommand = ResourceCommand<RouteState, 'route_id'>;

export const routeDecider = resourceDecider<RouteState, 'route_id'>({
  name: 'route',
  idKey: 'route_id',
  created: 'RouteCreated',
  changed: 'RouteUpdated',
  deleted: 'RouteDeleted',
});
