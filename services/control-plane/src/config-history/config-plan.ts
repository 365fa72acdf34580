import {
  circuitBreaker,
  healthCheck,
  loadBalancing,
  type OriginConfig,
  originTls,
} from '@vantageedge/shared/domain/gateway-config';
import { hasEveryTag, withTags } from '@vantageedge/shared/domain/resource-tags';
import type { HeaderTransform, QueryTransform } from '@vantageedge/shared/domain/route-policies';
import { withStoredRouteCredentials } from '../domain/credential-headers.js';
import { invalid } from '../domain/errors.js';
import type { ConfigDocument, OriginEntry, RouteEntry } from '../schemas/config-document.js';
import type { UpdateOriginBody, UpdateRouteBody, UpdateTenantBody } from '../schemas/requests.js';
import { type ConfigChange, fieldChanges, routeName } from './config-diff.js';
import type { TenantConfig } from './tenant-config.js';
import { withWrittenCredentialsMarked } from './written-credentials.js';

/**
 * What it takes to turn a tenant's current config into the one a document describes: the changes (as
 * the diff shows them) and the commands that make them, in an order every command can succeed in —
 * tenant, origins added or restored or updated, routes added or restored or updated, then routes
 * deleted, then origins removed (a route never points at an origin that is gone). Pure: the caller
 * says which ids the tenant had once (the deleted resources a document may bring back).
 */

/**
 * An origin a route points at: an existing one, one this plan adds (its index in the document), or none
 * (a route that answers itself with a fixed response or a redirect).
 */
export type OriginRef = { id: string } | { added: number } | { none: true };

/** An origin as a document entry gives it: its tags always (none is `[]`). */
export type OriginFields = Omit<OriginConfig, 'id' | 'tags'> & { tags: string[] };
export type RouteFields = Omit<RouteEntry, 'id' | 'origin' | 'origin_id'>;

export type PlanStep =
  | { action: 'update_tenant'; place: DocumentPlace; changes: UpdateTenantBody }
  | { action: 'add_origin'; place: DocumentPlace; index: number; origin: OriginFields }
  | { action: 'restore_origin'; place: DocumentPlace; id: string; origin: OriginFields }
  | { action: 'update_origin'; place: DocumentPlace; id: string; changes: UpdateOriginBody }
  | { action: 'remove_origin'; id: string }
  | { action: 'create_route'; place: DocumentPlace; origin: OriginRef; route: RouteFields }
  | { action: 'restore_route'; place: DocumentPlace; id: string; origin: OriginRef; route: RouteFields }
  | {
      action: 'update_route';
      place: DocumentPlace;
      id: string;
      origin: OriginRef;
      changes: Omit<UpdateRouteBody, 'origin_id'>;
    }
  | { action: 'delete_route'; id: string };

/**
 * Where a step's entry is in the document (`tenant`, `origins.2`, `routes.3`): the step's command names
 * its own body's fields, which a refusal names from here.
 */
export type DocumentPlace = string;

/** A planned change: as in a diff, plus `restored` (re-created under its old id); new resources have no id yet. */
export type PlannedChange = Omit<ConfigChange, 'id' | 'change'> & {
  id: string | null;
  change: ConfigChange['change'] | 'restored';
};

export interface ConfigPlan {
  changes: PlannedChange[];
  steps: PlanStep[];
}

/** Ids of origins and routes the tenant once had and deleted: a document may bring them back. */
export interface DeletedResources {
  origins: ReadonlySet<string>;
  routes: ReadonlySet<string>;
  /** The request_headers each deleted route had: what a credential header's placeholder keeps. */
  routeHeaders?: ReadonlyMap<string, HeaderTransform | null | undefined>;
  /** The query transform each deleted route had: what a credential query parameter's placeholder keeps. */
  routeQueries?: ReadonlyMap<string, QueryTransform | null | undefined>;
}

export interface PlanOptions {
  /**
   * `keep_stored` (documents people write: apply, plan): a credential header's or query parameter's
   * `<redacted>` keeps the stored value. `literal` (a rollback's document, made from the recorded config): values as they are.
   */
  placeholders?: 'keep_stored' | 'literal';
}

export function originFieldsOf(entry: OriginEntry): OriginFields {
  return {
    name: entry.name,
    // A single url is a one-target origin, as in POST /api/v1/origins.
    targets: entry.targets ?? [{ url: entry.url ?? '', weight: 1 }],
    health_check_path: entry.health_check_path,
    timeout_seconds: entry.timeout_seconds,
    load_balancing: entry.load_balancing ?? loadBalancing.parse({}),
    health_check: entry.health_check ?? healthCheck.parse({}),
    circuit_breaker: entry.circuit_breaker ?? circuitBreaker.parse({}),
    tls: entry.tls ?? originTls.parse({}),
    tags: entry.tags,
  };
}

export function routeFieldsOf(entry: RouteEntry): RouteFields {
  const { id: _id, origin: _origin, origin_id: _originId, ...fields } = entry;
  return fields;
}

const methodKey = (route: { path_pattern: string; methods: readonly string[] }) =>
  `${[...route.methods].sort().join(',')} ${route.path_pattern}`;

/** `items` by `keyOf`, each group in the items' order: a document's entries find their matches in one lookup. */
function groupBy<Item>(items: readonly Item[], keyOf: (item: Item) => string): Map<string, Item[]> {
  const groups = new Map<string, Item[]>();
  for (const item of items) {
    const key = keyOf(item);
    const group = groups.get(key);
    if (group === undefined) groups.set(key, [item]);
    else group.push(item);
  }
  return groups;
}

/**
 * Top-level fields of `desired` whose values differ from `current`'s, as `compared` (`desired` or a
 * stand-in for it) says.
 */
function changedTopLevel<T extends object>(current: object, compared: T, desired: T = compared): Partial<T> {
  const before = current as Record<string, unknown>;
  const changes: Partial<T> = {};
  for (const key of Object.keys(desired) as Array<keyof T & string>) {
    if (fieldChanges(before[key], compared[key]).length > 0) changes[key] = desired[key];
  }
  return changes;
}

export function planConfig(
  current: TenantConfig,
  document: ConfigDocument,
  deleted: DeletedResources,
  options: PlanOptions = {},
): ConfigPlan {
  const changes: PlannedChange[] = [];
  const steps: PlanStep[] = [];
  const routeSteps: PlanStep[] = [];
  const deletions: PlanStep[] = [];
  const removals: PlanStep[] = [];

  if (document.tenant.id !== undefined && document.tenant.id !== current.tenant_id) {
    throw invalid('the document describes another tenant', 'tenant.id', 'is not the id of this tenant');
  }
  const selectTags = document.select_tags ?? [];
  const managed = selectTags.length === 0 ? current : managedShare(current, selectTags);
  const desiredTenant = {
    ...current.tenant,
    name: document.tenant.name,
    subdomain: document.tenant.subdomain,
    clerk_org_id:
      document.tenant.clerk_org_id === undefined ? current.tenant.clerk_org_id : document.tenant.clerk_org_id,
    settings: document.tenant.settings ?? current.tenant.settings,
  };
  // A document of select_tags is one team's share of the tenant: the tenant itself is not theirs.
  const tenantFields = selectTags.length > 0 ? [] : fieldChanges(current.tenant, desiredTenant);
  if (tenantFields.length > 0) {
    const { id: _id, ...changed } = changedTopLevel(current.tenant, desiredTenant);
    steps.push({ action: 'update_tenant', place: 'tenant', changes: changed });
    changes.push({
      resource: 'tenant',
      id: current.tenant_id,
      name: desiredTenant.name,
      change: 'changed',
      fields: tenantFields,
      before: current.tenant,
      after: desiredTenant,
    });
  }

  // Origins: by id, else by name among the live ones no entry claimed by id.
  const liveOrigins = new Map(managed.origins.map((origin) => [origin.id, origin]));
  const unmanagedOrigins = new Set(
    current.origins.map((origin) => origin.id).filter((id) => !liveOrigins.has(id)),
  );
  const claimedByIdOrigins = new Set(document.origins.flatMap((entry) => (entry.id ? [entry.id] : [])));
  const originsByName = groupBy(managed.origins, (origin) => origin.name);
  const originRefs: OriginRef[] = [];
  const keptOrigins = new Set<string>();
  document.origins.forEach((entry, index) => {
    const fields = { ...originFieldsOf(entry), tags: withTags(entry.tags, selectTags) };
    const field = `origins.${index}`;
    if (entry.id !== undefined && unmanagedOrigins.has(entry.id)) throw unselected(`${field}.id`, selectTags);
    let id = entry.id;
    if (id === undefined) {
      const candidates = (originsByName.get(entry.name) ?? []).filter(
        (origin) => !claimedByIdOrigins.has(origin.id) && !keptOrigins.has(origin.id),
      );
      if (candidates.length > 1) {
        throw invalid(
          `several origins are named ${entry.name}`,
          `${field}.id`,
          'give the id of the one this entry is',
        );
      }
      id = candidates[0]?.id;
    }
    if (id === undefined) {
      originRefs.push({ added: index });
      steps.push({ action: 'add_origin', place: field, index, origin: fields });
      changes.push({
        resource: 'origin',
        id: null,
        name: fields.name,
        change: 'added',
        fields: [],
        before: null,
        after: fields,
      });
      return;
    }
    originRefs.push({ id });
    keptOrigins.add(id);
    const live = liveOrigins.get(id);
    if (live) {
      const { id: _liveId, ...liveFields } = withTagsMember(live);
      const fieldDiff = fieldChanges(liveFields, fields);
      if (fieldDiff.length === 0) return;
      steps.push({ action: 'update_origin', place: field, id, changes: changedTopLevel(liveFields, fields) });
      changes.push({
        resource: 'origin',
        id,
        name: fields.name,
        change: 'changed',
        fields: fieldDiff,
        before: live,
        after: { id, ...fields },
      });
      return;
    }
    if (!deleted.origins.has(id))
      throw invalid('no origin of this tenant has this id', `${field}.id`, 'unknown origin id');
    steps.push({ action: 'restore_origin', place: field, id, origin: fields });
    changes.push({
      resource: 'origin',
      id,
      name: fields.name,
      change: 'restored',
      fields: [],
      before: null,
      after: { id, ...fields },
    });
  });
  const routesOutside = outsideSelection(current, selectTags).routes;
  for (const origin of managed.origins) {
    if (keptOrigins.has(origin.id)) continue;
    requireUnusedOutside(origin, routesOutside, selectTags);
    removals.push({ action: 'remove_origin', id: origin.id });
    changes.push({
      resource: 'origin',
      id: origin.id,
      name: origin.name,
      change: 'removed',
      fields: [],
      before: origin,
      after: null,
    });
  }

  // Routes: by id, else by pattern and methods among the live ones no entry claimed by id.
  const originIndexByName = new Map(document.origins.map((entry, index) => [entry.name, index]));
  const liveRoutes = new Map(managed.routes.map((route) => [route.id, route]));
  const unmanagedRoutes = new Set(
    current.routes.map((route) => route.id).filter((id) => !liveRoutes.has(id)),
  );
  const claimedByIdRoutes = new Set(document.routes.flatMap((entry) => (entry.id ? [entry.id] : [])));
  const routesByMethodKey = groupBy(managed.routes, methodKey);
  // A route of the share may point at an origin of another team's, which it does not remove.
  const reachableOrigins = new Set([...keptOrigins, ...unmanagedOrigins]);
  const keptRoutes = new Set<string>();
  document.routes.forEach((entry, index) => {
    const field = `routes.${index}`;
    if (entry.id !== undefined && unmanagedRoutes.has(entry.id)) throw unselected(`${field}.id`, selectTags);
    const written = { ...routeFieldsOf(entry), tags: withTags(entry.tags, selectTags) };
    const origin = resolveOrigin(entry, field, originIndexByName, originRefs, reachableOrigins);
    const originId = 'id' in origin ? origin.id : null;
    let id = entry.id;
    if (id === undefined) {
      const candidates = (routesByMethodKey.get(methodKey(written)) ?? []).filter(
        (route) => !claimedByIdRoutes.has(route.id) && !keptRoutes.has(route.id),
      );
      if (candidates.length > 1) {
        throw invalid(
          `several routes are ${routeName(written)}`,
          `${field}.id`,
          'give the id of the one this entry is',
        );
      }
      id = candidates[0]?.id;
    }
    // A credential header's or query parameter's <redacted> placeholder keeps the value the route has
    // (or had, when it is brought back); for a new route it is a 400 naming the field
    // (domain/credential-headers.ts).
    const fields: RouteFields =
      options.placeholders === 'literal'
        ? written
        : withStoredRouteCredentials(
            written,
            id === undefined
              ? null
              : {
                  request_headers: liveRoutes.get(id)?.request_headers ?? deleted.routeHeaders?.get(id),
                  query: liveRoutes.get(id)?.query ?? deleted.routeQueries?.get(id),
                },
            field,
          );
    const shown = {
      origin_id: originId,
      ...(entry.origin !== undefined ? { origin: entry.origin } : {}),
      ...fields,
    };
    if (id === undefined) {
      routeSteps.push({ action: 'create_route', place: field, origin, route: fields });
      changes.push({
        resource: 'route',
        id: null,
        name: routeName(fields),
        change: 'added',
        fields: [],
        before: null,
        after: shown,
      });
      return;
    }
    keptRoutes.add(id);
    const live = liveRoutes.get(id);
    if (live) {
      const { id: _liveId, origin_id: liveOriginId, ...liveFields } = withTagsMember(live);
      const compared =
        options.placeholders === 'literal' ? fields : withWrittenCredentialsMarked(written, fields);
      const fieldDiff = fieldChanges(
        { origin_id: liveOriginId, ...liveFields },
        { origin_id: originId, ...compared },
      );
      if (fieldDiff.length === 0) return;
      routeSteps.push({
        action: 'update_route',
        place: field,
        id,
        origin,
        changes: changedTopLevel(liveFields, compared, fields),
      });
      changes.push({
        resource: 'route',
        id,
        name: routeName(fields),
        change: 'changed',
        fields: fieldDiff,
        before: live,
        after: { id, ...shown },
      });
      return;
    }
    if (!deleted.routes.has(id))
      throw invalid('no route of this tenant has this id', `${field}.id`, 'unknown route id');
    routeSteps.push({ action: 'restore_route', place: field, id, origin, route: fields });
    changes.push({
      resource: 'route',
      id,
      name: routeName(fields),
      change: 'restored',
      fields: [],
      before: null,
      after: { id, ...shown },
    });
  });
  for (const route of managed.routes) {
    if (keptRoutes.has(route.id)) continue;
    deletions.push({ action: 'delete_route', id: route.id });
    changes.push({
      resource: 'route',
      id: route.id,
      name: routeName(route),
      change: 'removed',
      fields: [],
      before: route,
      after: null,
    });
  }

  return { changes, steps: [...steps, ...routeSteps, ...deletions, ...removals] };
}

/** A live resource with its tags as a document entry has them: none is `[]` (the snapshot leaves it out). */
function withTagsMember<T extends { tags?: string[] | undefined }>(resource: T): T & { tags: string[] } {
  return { ...resource, tags: resource.tags ?? [] };
}

/** The origins and routes of `config` a document of `selectTags` manages: those carrying every one. */
function managedShare(config: TenantConfig, selectTags: readonly string[]): TenantConfig {
  return {
    ...config,
    origins: config.origins.filter((origin) => hasEveryTag(origin.tags, selectTags)),
    routes: config.routes.filter((route) => hasEveryTag(route.tags, selectTags)),
  };
}

/**
 * A share's origin it no longer lists is removed only when no route outside the share uses it (as its
 * origin or in its traffic split): the document cannot see those routes, and removing it would leave
 * them without an origin.
 */
function requireUnusedOutside(
  origin: TenantConfig['origins'][number],
  routesOutside: TenantConfig['routes'],
  selectTags: readonly string[],
): void {
  const users = routesOutside.filter(
    (route) =>
      route.origin_id === origin.id ||
      route.traffic_split?.origins.some((entry) => entry.origin_id === origin.id) === true,
  );
  if (users.length === 0) return;
  throw invalid(
    `the origin ${origin.name} is used by routes outside select_tags ${selectTags.join(', ')}`,
    'origins',
    `origin ${origin.id} (${origin.name}) is still used by route ${users.map((route) => route.id).join(', ')}: list it, or move those routes first`,
  );
}

/**
 * The origins and routes of `config` a document of `selectTags` leaves as they are (none without
 * select_tags): with the document's, they are the tenant it leaves.
 */
export function outsideSelection(
  config: TenantConfig,
  selectTags: readonly string[],
): Pick<TenantConfig, 'origins' | 'routes'> {
  if (selectTags.length === 0) return { origins: [], routes: [] };
  return {
    origins: config.origins.filter((origin) => !hasEveryTag(origin.tags, selectTags)),
    routes: config.routes.filter((route) => !hasEveryTag(route.tags, selectTags)),
  };
}

function unselected(field: string, selectTags: readonly string[]) {
  return invalid(
    'the document names a resource its select_tags do not select',
    field,
    `is not tagged ${selectTags.join(', ')}: another document manages it`,
  );
}

function resolveOrigin(
  entry: RouteEntry,
  field: string,
  indexByName: ReadonlyMap<string, number>,
  originRefs: readonly OriginRef[],
  keptOrigins: ReadonlySet<string>,
): OriginRef {
  if (entry.origin !== undefined) {
    const index = indexByName.get(entry.origin);
    const ref = index === undefined ? undefined : originRefs[index];
    if (!ref)
      throw invalid('the route names no origin of this document', `${field}.origin`, 'no such origin');
    return ref;
  }
  if (entry.origin_id === null) return { none: true };
  const id = entry.origin_id ?? '';
  if (!keptOrigins.has(id)) {
    throw invalid(
      'the route points at an origin this document does not keep',
      `${field}.origin_id`,
      'not an origin of this document',
    );
  }
  return { id };
}
