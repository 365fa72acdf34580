import {
  CONFIGURED_URL_FIELDS,
  isCredentialTransformField,
  redactedTransform,
  urlWithoutCredentials,
} from '@vantageedge/shared/domain/credential-headers';
import { isControlPlaneEvent } from '@vantageedge/shared/domain/events';
import type { RecordedEvent } from '@vantageedge/shared/event-store/port';
import type { ResourceType } from './schema.js';

/** One audit-log row: who did what to which resource, when, with the event's data minus secrets. */
export interface AuditEntry {
  position: bigint;
  event_id: string;
  event_type: string;
  stream: string;
  stream_revision: bigint;
  resource_type: string;
  resource_id: string;
  tenant_id: string | null;
  actor: string;
  correlation_id: string;
  causation_id: string | null;
  occurred_at: string;
  data: unknown;
}

const STREAM_PREFIXES: Record<string, ResourceType> = {
  tenant: 'tenant',
  user: 'user',
  origin: 'origin',
  route: 'route',
  apikey: 'api_key',
  certificate: 'certificate',
};

/** `origin-<uuid>` → origin / <uuid>. Streams of unknown categories keep their prefix as the type. */
export function resourceOfStream(stream: string): { type: string; id: string } {
  const dash = stream.indexOf('-');
  if (dash <= 0) return { type: stream, id: '' };
  const prefix = stream.slice(0, dash);
  return { type: STREAM_PREFIXES[prefix] ?? prefix, id: stream.slice(dash + 1) };
}

/** Field names whose values never leave the control plane, wherever they appear in event data. */
const SECRET_FIELDS = new Set([
  'key_hash',
  'key',
  'plaintext',
  'secret',
  'password',
  'client_secret',
  // A certificate's private key: sealed in the event, but not even the sealed form goes to the audit log.
  'private_key',
]);
/** Private members of a JWK (RFC 7518 §6): service keys should only be public keys, but be sure. */
const PRIVATE_JWK_MEMBERS = new Set(['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k']);

/** Arrays of JWKs in event data: service_accounts[].keys, and the retired service_jwks. */
const JWK_LISTS: ReadonlySet<string> = new Set(['keys', 'service_jwks']);

/**
 * `{ header name: value }` maps of a route, by the field holding them: their keys are names the tenant
 * chose, not fields of an event, so a header named `key` or `secret` is listed like any other (the
 * values are sent to every client: none is a secret).
 */
const RESPONSE_HEADER_MAPS: ReadonlyMap<string, ReadonlySet<string>> = new Map([
  ['response_headers', new Set(['set', 'add'])],
  ['fixed_response', new Set(['headers'])],
]);

/**
 * A deep copy of event data without secrets: secret fields dropped, private JWK members dropped, the
 * values of a route's credential request headers and query parameters (credential-headers.ts) shown as
 * `<redacted>`, and configured URLs without the credentials earlier releases accepted in them.
 */
export function redactSecrets(value: unknown, parentKey = ''): unknown {
  if (typeof value === 'string' && CONFIGURED_URL_FIELDS.has(parentKey)) return urlWithoutCredentials(value);
  if (Array.isArray(value)) {
    return value.map((item) => (JWK_LISTS.has(parentKey) ? redactJwk(item) : redactSecrets(item, parentKey)));
  }
  if (typeof value !== 'object' || value === null) return value;
  const copy: Record<string, unknown> = {};
  const headerMaps = RESPONSE_HEADER_MAPS.get(parentKey);
  for (const [key, item] of Object.entries(value)) {
    if (headerMaps?.has(key)) {
      copy[key] = item;
      continue;
    }
    if (SECRET_FIELDS.has(key)) continue;
    copy[key] = isCredentialTransformField(key) ? redactedTransform(key, item) : redactSecrets(item, key);
  }
  return copy;
}

function redactJwk(jwk: unknown): unknown {
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) return jwk;
  return Object.fromEntries(Object.entries(jwk).filter(([member]) => !PRIVATE_JWK_MEMBERS.has(member)));
}

function tenantIdOf(event: RecordedEvent): string | null {
  const data = event.data;
  if (
    typeof data === 'object' &&
    data !== null &&
    'tenant_id' in data &&
    typeof data.tenant_id === 'string'
  ) {
    return data.tenant_id;
  }
  return event.metadata.tenant_id;
}

/**
 * The resource an event is about. Users share their tenant's stream (older logs have them in
 * `user-<id>` streams), so their events name the user in their data; every other event's resource
 * is its stream. Both layouts give the same audit entries.
 */
export function resourceOf(event: RecordedEvent): { type: string; id: string } {
  if (isControlPlaneEvent(event)) {
    switch (event.type) {
      case 'UserCreated':
      case 'UserRoleChanged':
      case 'UserDeleted':
        return { type: 'user', id: event.data.user_id };
      default:
        break;
    }
  }
  return resourceOfStream(event.stream);
}

export function toAuditEntry(event: RecordedEvent): AuditEntry {
  const resource = resourceOf(event);
  return {
    position: event.position,
    event_id: event.id,
    event_type: event.type,
    stream: event.stream,
    stream_revision: event.revision,
    resource_type: resource.type,
    resource_id: resource.id,
    tenant_id: tenantIdOf(event),
    actor: event.metadata.actor,
    correlation_id: event.metadata.correlation_id,
    causation_id: event.metadata.causation_id,
    occurred_at: event.metadata.occurred_at,
    data: redactSecrets(event.data),
  };
}
