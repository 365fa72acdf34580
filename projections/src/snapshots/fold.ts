import { urlWithoutCredentials, urlWithoutUserInfo } from '@vantageedge/shared/domain/credential-headers';
import type { ControlPlaneEvent } from '@vantageedge/shared/domain/events';
import {
  type ApiKeyEntry,
  apiKeyEntry,
  type OriginConfig,
  originConfig,
  type RouteConfig,
  routeConfig,
  snapshotCertificate,
  storedTenantSettings,
  type TenantSettings,
  type TenantSnapshot,
} from '@vantageedge/shared/domain/gateway-config';
import { withoutEmptyTags } from '@vantageedge/shared/domain/resource-tags';
import { withRoute } from './route-order.js';

/**
 * Folds control-plane events into a tenant's gateway snapshot. Events are state-carrying (`*Updated`
 * holds the whole new resource), so each step replaces one entry. Pure: the projector keeps the state
 * in PostgreSQL and calls this per event.
 */

export type SnapshotState =
  | { status: 'live'; snapshot: TenantSnapshot }
  /** A deleted tenant: published as a tombstone; later events of its resources are ignored. */
  | { status: 'deleted'; tenantId: string; version: bigint; eventTime: string };

/** The tenant whose gateway snapshot an event changes, or null if it changes none. */
export function snapshotTenantOf(event: ControlPlaneEvent): string | null {
  switch (event.type) {
    case 'TenantCreated':
    case 'TenantUpdated':
    case 'TenantDeleted':
    case 'OriginCreated':
    case 'OriginUpdated':
    case 'OriginDeleted':
    case 'RouteCreated':
    case 'RouteUpdated':
    case 'RouteDeleted':
    case 'ApiKeyIssued':
    case 'ApiKeyRotated':
    case 'ApiKeyRevoked':
    case 'ApiKeyQuotaChanged':
    case 'CertificateUploaded':
    case 'CertificateKeyResealed':
    case 'CertificateDeleted':
      return event.data.tenant_id;
    // Who the tenant's users are decides who may call its jwt routes when it has no Clerk org.
    case 'UserCreated':
    case 'UserDeleted':
    case 'CustomDomainVerified':
    case 'CustomDomainDeleted':
      return event.data.tenant_id;
    // Roles, pending domains and key tags do not reach the gateway; cache purges travel on their own channel.
    case 'UserRoleChanged':
    case 'ApiKeyTagsChanged':
    case 'CustomDomainCreated':
    case 'CachePurgeRequested':
    // A rollback marker: the compensating events that follow it change the snapshot.
    case 'ConfigRolledBack':
    // Recorded by a refold that drops the tenant (refold-drops.ts), for the audit log.
    case 'TenantDroppedFromGateways':
    case 'TenantDropRolledBack':
      return null;
  }
}

/** Keeps only the keys a schema knows (events carry extra fields such as changed_fields, tenant_id). */
function pick<T extends object>(shape: Record<string, unknown>, source: object): T {
  const result: Record<string, unknown> = {};
  for (const key of Object.keys(shape)) {
    if (key in source) result[key] = (source as Record<string, unknown>)[key];
  }
  return result as T;
}

/**
 * Earlier releases recorded origin target URLs with user information and a query, and a jwks_url with
 * user information; the event log keeps them. A gateway connects to a target's scheme, host and port and
 * prefixes its path, and fetches a key set without user information: the snapshot, which every replica
 * and whoever reads the topic gets, carries the URLs without those credentials (as every read shows them).
 */
function toOrigin(data: { origin_id: string } & object): OriginConfig {
  const origin = withoutEmptyTags(
    originConfig.parse({ ...pick(originConfig.shape, data), id: data.origin_id }),
  );
  return {
    ...origin,
    targets: origin.targets.map((target) => ({ ...target, url: urlWithoutCredentials(target.url) })),
  };
}

function toSettings(stored: unknown): TenantSettings {
  // Legacy settings (unverified custom_domains, unbound service_jwks) are dropped, never applied.
  const settings = storedTenantSettings.parse(stored);
  if (settings.oidc === null) return settings;
  return { ...settings, oidc: { ...settings.oidc, jwks_url: urlWithoutUserInfo(settings.oidc.jwks_url) } };
}

function toRoute(data: { route_id: string } & object): RouteConfig {
  return withoutEmptyTags(routeConfig.parse({ ...pick(routeConfig.shape, data), id: data.route_id }));
}

function replaceById<T extends { id: string }>(list: readonly T[], item: T): T[] {
  const index = list.findIndex((entry) => entry.id === item.id);
  if (index === -1) return [...list, item];
  const copy = [...list];
  copy[index] = item;
  return copy;
}

/**
 * The keys that still work at `eventTime` (`list` itself when all do). TENANT_MAX_API_KEYS counts only
 * working keys, so the snapshot keeps only those: an expired key leaves it with the tenant's next
 * change, one issued already expired or rotated away without grace at once. Judged by the event's own
 * time, so every replay folds the same snapshot. Gateways refuse an expired key that is still in it.
 */
function unexpiredKeys(list: ApiKeyEntry[], eventTime: string): ApiKeyEntry[] {
  const now = Date.parse(eventTime);
  if (Number.isNaN(now) || now < earliestExpiry(list)) return list;
  return list.filter((key) => key.expires_at === null || Date.parse(key.expires_at) > now);
}

/**
 * Each key list's earliest expiry (ms; -Infinity when a key's cannot be read: such a key never works).
 * An event that changes no key hands the same list on, so a run of a tenant's other changes (a config
 * apply's thousands of route events) reads its keys' expiries once, not once per event.
 */
const earliestExpiries = new WeakMap<readonly ApiKeyEntry[], number>();

function earliestExpiry(list: readonly ApiKeyEntry[]): number {
  let earliest = earliestExpiries.get(list);
  if (earliest !== undefined) return earliest;
  earliest = Number.POSITIVE_INFINITY;
  for (const key of list) {
    if (key.expires_at === null) continue;
    const expiresAt = Date.parse(key.expires_at);
    earliest = Number.isNaN(expiresAt) ? Number.NEGATIVE_INFINITY : Math.min(earliest, expiresAt);
  }
  earliestExpiries.set(list, earliest);
  return earliest;
}

/**
 * The state after `event`, or `current` itself (same reference) when the event changes nothing.
 * Throws on data that does not fit the snapshot schema (the projector parks such an event and
 * quarantines its tenant: runner/quarantine.ts).
 */
export function foldSnapshotEvent(
  current: SnapshotState | undefined,
  event: ControlPlaneEvent,
): SnapshotState | undefined {
  if (current?.status === 'deleted') return current;
  const version = event.position.toString();
  const eventTime = event.metadata.occurred_at;

  if (event.type === 'TenantCreated' || event.type === 'TenantUpdated') {
    const data = event.data;
    const previous = current?.snapshot.tenant;
    const tenant = {
      id: data.tenant_id,
      name: data.name,
      subdomain: data.subdomain,
      subdomain_position:
        previous?.subdomain === data.subdomain && previous.subdomain_position !== undefined
          ? previous.subdomain_position
          : version,
      clerk_org_id: data.clerk_org_id,
      settings: toSettings(data.settings),
    };
    const base = current?.snapshot ?? {
      custom_domains: [],
      users: [],
      origins: [],
      routes: [],
      api_keys: [],
      certificates: [],
    };
    return {
      status: 'live',
      snapshot: {
        schema_version: 1,
        tenant_id: data.tenant_id,
        version,
        event_time: eventTime,
        tenant,
        custom_domains: base.custom_domains,
        users: base.users,
        origins: base.origins,
        routes: base.routes,
        api_keys: unexpiredKeys(base.api_keys, eventTime),
        certificates: base.certificates ?? [],
      },
    };
  }
  // Every other event needs a live tenant (events of an unknown tenant are ignored).
  if (!current) return current;
  if (event.type === 'TenantDeleted') {
    return { status: 'deleted', tenantId: event.data.tenant_id, version: event.position, eventTime };
  }

  const snapshot = current.snapshot;
  const next = (
    changes: Partial<
      Pick<TenantSnapshot, 'origins' | 'routes' | 'api_keys' | 'custom_domains' | 'users' | 'certificates'>
    >,
  ): SnapshotState => ({
    status: 'live',
    snapshot: {
      ...snapshot,
      ...changes,
      api_keys: unexpiredKeys(changes.api_keys ?? snapshot.api_keys, eventTime),
      version,
      event_time: eventTime,
    },
  });

  switch (event.type) {
    case 'OriginCreated':
    case 'OriginUpdated':
      return next({ origins: replaceById(snapshot.origins, toOrigin(event.data)) });
    case 'OriginDeleted':
      return next({ origins: snapshot.origins.filter((origin) => origin.id !== event.data.origin_id) });
    case 'RouteCreated':
    case 'RouteUpdated':
      return next({ routes: withRoute(snapshot.routes, toRoute(event.data)) });
    case 'RouteDeleted':
      return next({ routes: snapshot.routes.filter((route) => route.id !== event.data.route_id) });
    case 'ApiKeyIssued': {
      const key: ApiKeyEntry = apiKeyEntry.parse({
        id: event.data.api_key_id,
        key_hash: event.data.key_hash,
        name: event.data.name,
        scopes: event.data.scopes,
        expires_at: event.data.expires_at,
        quota: event.data.quota ?? null,
      });
      return next({ api_keys: replaceById(snapshot.api_keys, key) });
    }
    case 'ApiKeyQuotaChanged': {
      const { api_key_id, quota } = event.data;
      if (!snapshot.api_keys.some((key) => key.id === api_key_id)) return current;
      return next({
        api_keys: snapshot.api_keys.map((key) => (key.id === api_key_id ? { ...key, quota } : key)),
      });
    }
    case 'ApiKeyRotated': {
      const { api_key_id, old_key_expires_at } = event.data;
      if (!snapshot.api_keys.some((key) => key.id === api_key_id)) return current;
      return next({
        api_keys: snapshot.api_keys.map((key) =>
          key.id === api_key_id ? { ...key, expires_at: earlier(key.expires_at, old_key_expires_at) } : key,
        ),
      });
    }
    case 'ApiKeyRevoked':
      if (!snapshot.api_keys.some((key) => key.id === event.data.api_key_id)) return current;
      return next({ api_keys: snapshot.api_keys.filter((key) => key.id !== event.data.api_key_id) });
    case 'UserCreated': {
      const { user_id, clerk_user_id } = event.data;
      return next({ users: replaceById(snapshot.users ?? [], { id: user_id, clerk_user_id }) });
    }
    case 'UserDeleted': {
      const users = snapshot.users ?? [];
      if (!users.some((user) => user.id === event.data.user_id)) return current;
      return next({ users: users.filter((user) => user.id !== event.data.user_id) });
    }
    case 'CustomDomainVerified': {
      const domains = (snapshot.custom_domains ?? []).filter((d) => d.domain !== event.data.domain);
      return next({
        custom_domains: [...domains, { domain: event.data.domain, verified_position: version }],
      });
    }
    case 'CertificateUploaded': {
      const d = event.data;
      const certificate = snapshotCertificate.parse({
        id: d.certificate_id,
        domains: d.domains,
        certificate_pem: d.certificate_pem,
        private_key: d.private_key,
        fingerprint_sha256: d.fingerprint_sha256,
        not_after: d.not_after,
      });
      return next({ certificates: replaceById(snapshot.certificates ?? [], certificate) });
    }
    case 'CertificateKeyResealed': {
      const { certificate_id, private_key } = event.data;
      const certificates = snapshot.certificates ?? [];
      if (!certificates.some((certificate) => certificate.id === certificate_id)) return current;
      return next({
        certificates: certificates.map((certificate) =>
          certificate.id === certificate_id ? { ...certificate, private_key } : certificate,
        ),
      });
    }
    case 'CertificateDeleted': {
      const { certificate_id } = event.data;
      const certificates = snapshot.certificates ?? [];
      if (!certificates.some((certificate) => certificate.id === certificate_id)) return current;
      return next({ certificates: certificates.filter((certificate) => certificate.id !== certificate_id) });
    }
    case 'CustomDomainDeleted': {
      const domains = snapshot.custom_domains ?? [];
      if (!domains.some((d) => d.domain === event.data.domain)) return current;
      return next({ custom_domains: domains.filter((d) => d.domain !== event.data.domain) });
    }
    default:
      return current;
  }
}

/** A rotation never extends a key's life: the old key expires at the earlier of the two times. */
function earlier(current: string | null, rotationEnd: string): string {
  if (current === null) return rotationEnd;
  return Date.parse(current) <= Date.parse(rotationEnd) ? current : rotationEnd;
}
