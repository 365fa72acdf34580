import type { RecordedEvent } from '../event-store/port.js';
import { UpcasterRegistry } from '../event-store/upcasting.js';
import type { ControlPlaneEventType } from './events.js';
import {
  apiKeyEntry,
  LEGACY_SETTINGS_FIELDS,
  originConfig,
  routeConfig,
  tenantSettings,
  withoutLegacySettings,
} from './gateway-config.js';
import { withSchemaDefaults } from './schema-defaults.js';

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

type Data = Record<string, unknown>;

/** The event with `data` read through `complete` (the same event when nothing changes). */
function completing(complete: (data: Data) => Data): (event: RecordedEvent) => RecordedEvent {
  return (event) => {
    const data = event.data;
    if (typeof data !== 'object' || data === null || Array.isArray(data)) return event;
    const completed = complete(data as Data);
    return completed === data ? event : { ...event, data: completed };
  };
}

/**
 * Tenant settings as a release today writes them: the retired fields (unverified custom_domains,
 * unbound service_jwks) gone, every field added since at its default.
 */
function completeTenant(data: Data): Data {
  const stored = data['settings'];
  if (typeof stored !== 'object' || stored === null) return data;
  const retired = LEGACY_SETTINGS_FIELDS.some((field) => Object.hasOwn(stored, field));
  const settings = withSchemaDefaults(tenantSettings, retired ? withoutLegacySettings(stored) : stored);
  return settings === stored ? data : { ...data, settings };
}

/**
 * A key issued before keys had tags has none. Tags are not in the snapshot's key shape (apiKeyEntry):
 * gateways never read them.
 */
function withKeyTags(data: Data): Data {
  return Object.hasOwn(data, 'tags') ? data : { ...data, tags: [] };
}

/**
 * The state-carrying events, each completed with the defaults of the fields added to its resource
 * after it was written (see withSchemaDefaults: the stored shapes in gateway-config.ts say them).
 */
const COMPLETED_EVENT_DATA: ReadonlyArray<[ControlPlaneEventType, (data: Data) => Data]> = [
  ['TenantCreated', completeTenant],
  ['TenantUpdated', completeTenant],
  ['OriginCreated', (data) => withSchemaDefaults(originConfig, data) as Data],
  ['OriginUpdated', (data) => withSchemaDefaults(originConfig, data) as Data],
  ['RouteCreated', (data) => withSchemaDefaults(routeConfig, data) as Data],
  ['RouteUpdated', (data) => withSchemaDefaults(routeConfig, data) as Data],
  ['ApiKeyIssued', (data) => withKeyTags(withSchemaDefaults(apiKeyEntry, data) as Data)],
];

/** What every event store applies to the control plane's log on read unless it is given another registry. */
export const CONTROL_PLANE_UPCASTERS = COMPLETED_EVENT_DATA.reduce(
  (registry, [type, complete]) => registry.fillDefaults(type, completing(complete)),
  Object.entries(RENAMED_EVENT_TYPES).reduce(
    (registry, [oldType, newType]) => registry.renameType(oldType, newType),
    new UpcasterRegistry(),
  ),
);
