import type { TenantConfig } from './tenant-config.js';

/**
 * A structured diff between two configs of one tenant: which resources were added, removed or
 * changed, and for a change which fields (dotted paths into the resource, e.g.
 * `rate_limit.requests_per_second`) went from what to what. Resources are matched by id; the order of
 * the routes is not a change of its own (gateways derive it from the routes' contents).
 */

export const CONFIG_RESOURCES = [
  'tenant',
  'custom_domain',
  'user',
  'origin',
  'route',
  'api_key',
  'certificate',
] as const;
export type ConfigResource = (typeof CONFIG_RESOURCES)[number];
export const CHANGE_KINDS = ['added', 'removed', 'changed'] as const;
export type ChangeKind = (typeof CHANGE_KINDS)[number];

export interface FieldChange {
  field: string;
  /** null when the field was absent. */
  from: unknown;
  to: unknown;
}

export interface ConfigChange {
  resource: ConfigResource;
  id: string;
  /**
   * What a person calls it: the tenant's or origin's name, a route's methods and pattern, a key's name,
   * a certificate's domains.
   */
  name: string;
  change: ChangeKind;
  /** The fields that differ (changes only). */
  fields: FieldChange[];
  /** The resource before and after (null when it did not exist on that side). */
  before: unknown;
  after: unknown;
}

/**
 * The parts of a config that are compared. Keys, certificates, custom domains and users are compared
 * only when both sides list them (a document holds none of them: apply and rollback leave them alone).
 */
export type ConfigContent = Pick<TenantConfig, 'tenant' | 'origins' | 'routes'> & {
  api_keys?: TenantConfig['api_keys'] | undefined;
  certificates?: TenantConfig['certificates'] | undefined;
  custom_domains?: TenantConfig['custom_domains'] | undefined;
  users?: TenantConfig['users'] | undefined;
};

export function routeName(route: { methods: readonly string[]; path_pattern: string }): string {
  return `${route.methods.length === 0 ? 'ANY' : route.methods.join(',')} ${route.path_pattern}`;
}

export function diffConfigs(from: ConfigContent, to: ConfigContent): ConfigChange[] {
  const changes: ConfigChange[] = [];
  const tenantFields = fieldChanges(from.tenant, to.tenant);
  if (tenantFields.length > 0) {
    changes.push({
      resource: 'tenant',
      id: to.tenant.id,
      name: to.tenant.name,
      change: 'changed',
      fields: tenantFields,
      before: from.tenant,
      after: to.tenant,
    });
  }
  if (from.custom_domains !== undefined && to.custom_domains !== undefined) {
    const byDomain = (list: TenantConfig['custom_domains']) =>
      list.map((entry) => ({ id: entry.domain, ...entry }));
    changes.push(
      ...diffById(
        'custom_domain',
        byDomain(from.custom_domains),
        byDomain(to.custom_domains),
        (d) => d.domain,
      ),
    );
  }
  if (from.users !== undefined && to.users !== undefined) {
    changes.push(...diffById('user', from.users, to.users, (user) => user.clerk_user_id));
  }
  changes.push(...diffById('origin', from.origins, to.origins, (origin) => origin.name));
  changes.push(...diffById('route', from.routes, to.routes, routeName));
  if (from.api_keys !== undefined && to.api_keys !== undefined) {
    changes.push(...diffById('api_key', from.api_keys, to.api_keys, (key) => key.name));
  }
  if (from.certificates !== undefined && to.certificates !== undefined) {
    changes.push(
      ...diffById('certificate', from.certificates, to.certificates, (certificate) =>
        certificate.domains.join(','),
      ),
    );
  }
  return changes;
}

function diffById<Item extends { id: string }>(
  resource: ConfigResource,
  before: readonly Item[],
  after: readonly Item[],
  nameOf: (item: Item) => string,
): ConfigChange[] {
  const old = new Map(before.map((item) => [item.id, item]));
  const current = new Set(after.map((item) => item.id));
  const changes: ConfigChange[] = [];
  for (const item of after) {
    const previous = old.get(item.id);
    if (previous === undefined) {
      changes.push({
        resource,
        id: item.id,
        name: nameOf(item),
        change: 'added',
        fields: [],
        before: null,
        after: item,
      });
      continue;
    }
    const fields = fieldChanges(previous, item);
    if (fields.length > 0) {
      changes.push({
        resource,
        id: item.id,
        name: nameOf(item),
        change: 'changed',
        fields,
        before: previous,
        after: item,
      });
    }
  }
  for (const item of before) {
    if (!current.has(item.id)) {
      changes.push({
        resource,
        id: item.id,
        name: nameOf(item),
        change: 'removed',
        fields: [],
        before: item,
        after: null,
      });
    }
  }
  return changes;
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** `record`'s own member `key`: a map's names are the tenant's (`toString` finds Object.prototype's). */
const member = (record: Record<string, unknown>, key: string): unknown =>
  Object.hasOwn(record, key) ? record[key] : undefined;

/** Objects are compared key by key (recursively); arrays and scalars as whole values. */
export function fieldChanges(from: unknown, to: unknown, prefix = ''): FieldChange[] {
  if (isRecord(from) && isRecord(to)) {
    const keys = [...new Set([...Object.keys(from), ...Object.keys(to)])];
    return keys.flatMap((key) =>
      fieldChanges(member(from, key), member(to, key), prefix === '' ? key : `${prefix}.${key}`),
    );
  }
  if (sameJson(from, to)) return [];
  return [{ field: prefix, from: from ?? null, to: to ?? null }];
}

/** Deep equality of JSON values (undefined and an absent key count as equal). */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((item, index) => sameJson(item, b[index]));
  }
  if (isRecord(a) && isRecord(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const key of keys) if (!sameJson(member(a, key), member(b, key))) return false;
    return true;
  }
  return false;
}
