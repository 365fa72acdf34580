import type { NewEvent, RecordedEvent } from '../event-store/port.js';
import type { SealedPrivateKey } from '../tls/private-key-envelope.js';
import type { OriginConfig, OriginTls, QuotaPolicy, RouteConfig, TenantSettings } from './gateway-config.js';

/**
 * The control plane's events: the only source of truth. Read models, the audit log and the gateway
 * snapshots are all folded from these. Past tense, one vocabulary: a resource is Created, Updated
 * and Deleted; domain verbs (ApiKeyIssued/Rotated/Revoked, UserRoleChanged, CustomDomainVerified) name
 * what is not one of those. Names once written stay readable: event-upcasters.ts renames old ones on
 * read. `*Updated` events carry the complete new state of the resource plus the names of the fields
 * that changed, so every consumer can fold them without knowing the previous state and the audit log
 * can show what changed.
 *
 * Streams: `tenant-<id>` (the tenant and its users: TenantCreated/Updated/Deleted and
 * UserCreated/RoleChanged/Deleted), `origin-<id>`, `route-<id>`, `apikey-<id>`, `cache-<tenant id>`,
 * `config-<tenant id>` (rollbacks of its config: ConfigRolledBack), `certificate-<id>`. A refold that
 * drops a tenant from the gateways records TenantDroppedFromGateways in the tenant's stream (and, when it
 * failed after that, TenantDropRolledBack).
 * Logs written before users moved into their tenant's stream keep them in `user-<id>` streams; every
 * consumer folds user events by their data, so both layouts project the same way.
 * Uniqueness reservations: `subdomain:<subdomain>`, `clerk_org:<org id>`, `api_key_hash:<hash>`,
 * `tenant_user:<tenant id>:<clerk user id>`, `custom_domain:<domain>` (held by the tenant's stream, so a
 * host name belongs to at most one tenant platform-wide from the moment it is claimed), and `user:<user id>`
 * (held by the tenant stream a user lives in: how a command finds a user by id).
 */

export const USER_ROLES = ['owner', 'admin', 'member', 'viewer'] as const;
export type UserRole = (typeof USER_ROLES)[number];

export interface TenantState {
  tenant_id: string;
  name: string;
  subdomain: string;
  clerk_org_id: string | null;
  settings: TenantSettings;
}

export interface UserState {
  user_id: string;
  tenant_id: string;
  clerk_user_id: string;
  email: string;
  role: UserRole;
}

/** OriginConfig with `id` named origin_id and its tenant; `tls` is absent in origins recorded before it existed. */
export type OriginState = Omit<OriginConfig, 'id' | 'tls'> & {
  origin_id: string;
  tenant_id: string;
  tls?: OriginTls;
};
export type RouteState = Omit<RouteConfig, 'id'> & { route_id: string; tenant_id: string };

export interface ApiKeyState {
  api_key_id: string;
  tenant_id: string;
  name: string;
  /** HMAC-SHA-256(pepper, plaintext), lowercase hex. */
  key_hash: string;
  /** The first characters of the plaintext (e.g. "ve_live_ab12"), safe to show in lists. */
  key_prefix: string;
  scopes: string[];
  expires_at: string | null;
  /** Requests the key may make per day/month; absent in keys issued before quotas existed. */
  quota?: QuotaPolicy | null;
  /** Labels for filtering lists (resource-tags.ts); absent in keys issued before keys had tags. Gateways never read them. */
  tags?: string[];
}

/** A tenant's TLS certificate for some of its custom domains; the private key only ever sealed. */
export interface CertificateState {
  certificate_id: string;
  tenant_id: string;
  /** Verified custom domains of the tenant it is served for (each covered by its SANs). */
  domains: string[];
  /** PEM chain, leaf first (public). */
  certificate_pem: string;
  /** The private key sealed under CERTIFICATE_ENCRYPTION_KEY, bound to this tenant and certificate. */
  private_key: SealedPrivateKey;
  fingerprint_sha256: string;
  subject: string;
  issuer: string;
  serial_number: string;
  dns_names: string[];
  key_type: string;
  not_before: string;
  not_after: string;
}

/** How a custom domain's ownership was established. */
export type CustomDomainVerificationMethod = 'dns_txt' | 'platform_admin';

/** A host name a tenant claimed (in the tenant's stream); it serves traffic only once verified. */
export interface CustomDomainClaim {
  tenant_id: string;
  /** Read-model id of this claim. */
  custom_domain_id: string;
  /** Canonical host name: lower-case ASCII (punycode), no port, no trailing dot. */
  domain: string;
  /** The value `_vantageedge-challenge.<domain>` must hold (TXT) to prove ownership. */
  verification_token: string;
}

export interface ControlPlaneEventMap {
  TenantCreated: TenantState;
  TenantUpdated: TenantState & { changed_fields: string[] };
  TenantDeleted: { tenant_id: string };
  UserCreated: UserState;
  UserRoleChanged: UserState & { changed_fields: string[] };
  UserDeleted: { user_id: string; tenant_id: string };
  OriginCreated: OriginState;
  OriginUpdated: OriginState & { changed_fields: string[] };
  OriginDeleted: { origin_id: string; tenant_id: string };
  RouteCreated: RouteState;
  RouteUpdated: RouteState & { changed_fields: string[] };
  RouteDeleted: { route_id: string; tenant_id: string };
  ApiKeyIssued: ApiKeyState;
  /** A rotation: the old key stays valid until `old_key_expires_at`, then only `replaced_by` works. */
  ApiKeyRotated: { api_key_id: string; tenant_id: string; replaced_by: string; old_key_expires_at: string };
  ApiKeyRevoked: { api_key_id: string; tenant_id: string; reason: string | null };
  /** The key's request quota set, changed or removed (null). */
  ApiKeyQuotaChanged: { api_key_id: string; tenant_id: string; quota: QuotaPolicy | null };
  /** The key's tags replaced (none: `[]`); only lists read them, never the gateways. */
  ApiKeyTagsChanged: { api_key_id: string; tenant_id: string; tags: string[] };
  /**
   * Asks every gateway replica to drop cached responses of a route (or the whole tenant when null),
   * or, with `tags`, the tenant's responses its origins tagged with one of them (Surrogate-Key).
   */
  CachePurgeRequested: {
    tenant_id: string;
    route_id: string | null;
    tags?: string[];
    /** Purge by URL prefix: the normalised prefixes (`/products`). */
    prefixes?: string[];
    soft?: boolean;
  };
  /**
   * A rollback of the tenant's gateway config to the config it had after event `to_position` (decimal),
   * recorded before the compensating events, which name this event as their causation. `from_version`
   * is the config version it started from; `changes` how many resources it restores, changes or removes.
   */
  ConfigRolledBack: { tenant_id: string; to_position: string; from_version: string; changes: number };
  CustomDomainCreated: CustomDomainClaim;
  CustomDomainVerified: {
    tenant_id: string;
    custom_domain_id: string;
    domain: string;
    method: CustomDomainVerificationMethod;
  };
  CustomDomainDeleted: { tenant_id: string; custom_domain_id: string; domain: string };
  CertificateUploaded: CertificateState;
  /** The same key sealed again under the current key-encryption key (its rotation). */
  CertificateKeyResealed: { certificate_id: string; tenant_id: string; private_key: SealedPrivateKey };
  CertificateDeleted: { certificate_id: string; tenant_id: string };
  /**
   * A refold of the gateway snapshots (`republish-snapshots --refold --drop-unfoldable-tenants`) took the
   * tenant off every gateway: its fold refuses the tenant's event at `refused_position` (its creation),
   * so it has no snapshot left to serve. Recorded by the refold for the audit log; the tenant's
   * snapshot is a tombstone until a refold folds its events again.
   */
  TenantDroppedFromGateways: {
    tenant_id: string;
    /** Decimal position of the event the fold refused; null when none was refused (nothing folded). */
    refused_position: string | null;
    refused_event_type: string | null;
    /** Why the fold refused it. */
    error: string;
  };
  /**
   * The refold that recorded the tenant's TenantDroppedFromGateways at `drop_position` failed before it
   * committed: the tenant was not dropped, its gateways serve it as before. Recorded by that refold
   * (its causation_id is the drop event's id), for the audit log.
   */
  TenantDropRolledBack: {
    tenant_id: string;
    /** Decimal position of the TenantDroppedFromGateways event that did not take effect. */
    drop_position: string;
    /** Why the refold failed. */
    error: string;
  };
}

export type ControlPlaneEventType = keyof ControlPlaneEventMap;

export type ControlPlaneNewEvent = {
  [Type in ControlPlaneEventType]: NewEvent<Type, ControlPlaneEventMap[Type]>;
}[ControlPlaneEventType];

export type ControlPlaneEvent = {
  [Type in ControlPlaneEventType]: RecordedEvent<Type, ControlPlaneEventMap[Type]>;
}[ControlPlaneEventType];

export const streamName = {
  tenant: (id: string) => `tenant-${id}`,
  /** Where users lived before they moved into their tenant's stream (read, never written). */
  user: (id: string) => `user-${id}`,
  origin: (id: string) => `origin-${id}`,
  route: (id: string) => `route-${id}`,
  apiKey: (id: string) => `apikey-${id}`,
  certificate: (id: string) => `certificate-${id}`,
  config: (tenantId: string) => `config-${tenantId}`,
} as const;

export const reservation = {
  subdomain: (subdomain: string) => `subdomain:${subdomain}`,
  clerkOrg: (orgId: string) => `clerk_org:${orgId}`,
  apiKeyHash: (hash: string) => `api_key_hash:${hash}`,
  tenantUser: (tenantId: string, clerkUserId: string) => `tenant_user:${tenantId}:${clerkUserId}`,
  user: (userId: string) => `user:${userId}`,
  customDomain: (domain: string) => `custom_domain:${domain}`,
} as const;

/** Narrows a stored event to a control-plane event by type (data shapes are trusted: we wrote them). */
export function isControlPlaneEvent(event: RecordedEvent): event is ControlPlaneEvent {
  return CONTROL_PLANE_EVENT_TYPES.has(event.type);
}

/** A tenant's deletion (the projections apply it even to a tenant they quarantined). */
export function isTenantDeletion(event: RecordedEvent): boolean {
  return event.type === 'TenantDeleted';
}

const CONTROL_PLANE_EVENT_TYPES: ReadonlySet<string> = new Set<ControlPlaneEventType>([
  'TenantCreated',
  'TenantUpdated',
  'TenantDeleted',
  'UserCreated',
  'UserRoleChanged',
  'UserDeleted',
  'OriginCreated',
  'OriginUpdated',
  'OriginDeleted',
  'RouteCreated',
  'RouteUpdated',
  'RouteDeleted',
  'ApiKeyIssued',
  'ApiKeyRotated',
  'ApiKeyRevoked',
  'ApiKeyQuotaChanged',
  'ApiKeyTagsChanged',
  'CachePurgeRequested',
  'ConfigRolledBack',
  'CustomDomainCreated',
  'CustomDomainVerified',
  'CustomDomainDeleted',
  'CertificateUploaded',
  'CertificateKeyResealed',
  'CertificateDeleted',
  'TenantDroppedFromGateways',
  'TenantDropRolledBack',
]);
