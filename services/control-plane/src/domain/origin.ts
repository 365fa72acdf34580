import type { OriginState } from '@vantageedge/shared/domain/events';
import type { Lifecycle } from './decision.js';
import { type ResourceCommand, resourceDecider } from './resource-decider.js';

export type Origin = Lifecycle<OriginState>;
export type OriginCommand = ResourceCommand<OriginState, 'origin_id'>;

export const originDecider = resourceDecider<OriginState, 'origin_id'>({
  name: 'origin',
  idKey: 'origin_id',
  created: 'OriginCreated',
  changed: 'OriginUpdated',
  deleted: 'OriginDeleted',
});
