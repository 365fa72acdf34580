import { UpcasterRegistry } from '../event-store/upcasting.js';
import type { ControlPlaneEventType } from './events.js';

/**
 * Event types the control plane wrote under other names before its events and commands shared one
 * vocabulary (resources are Created, Updated and Deleted). The data of each is unchanged: only the
 * name moved. Logs keep the old names; every event store reads them under the current ones.
 */
export const RENAMED_EVENT_TYPES: Readonly<Record<string, ControlPlaneEventType>> = {
  OriginAdded: 'OriginCreated',
  OriginRemoved: 'OriginDeleted',
  UserAdded: 'UserCreated',
  UserRemoved: 'UserDeleted',
  CustomDomainAdded: 'CustomDomainCreated',
  CustomDomainRemoved: 'CustomDomainDeleted',
};

/** What every event store applies to the control plane's log on read unless it is given another registry. */
export const CONTROL_PLANE_UPCASTERS = Object.entries(RENAMED_EVENT_TYPES).reduce(
  (registry, [oldType, newType]) => registry.renameType(oldType, newType),
  new UpcasterRegistry(),
);
