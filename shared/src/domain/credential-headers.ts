/**
 * Credentials a route sends to its origin (`request_headers.set` / `.add`, e.g. an origin's
 * `authorization: Bearer …`) are write-only, like API keys: the event log and the gateways' snapshots
 * keep the value, every read of the admin API — the resources, the tenant's config and its document,
 * diffs, plans, explain, the audit log — shows REDACTED_VALUE instead, to every role (README "Route
 * policies"). A write that carries the placeholder as such a header's value keeps the stored value
 * (control plane: domain/credential-headers.ts).
 *
 * Which headers: a name (compared case-insensitively, `_` read as `-`) in CREDENTIAL_HEADER_NAMES, or
 * containing one of CREDENTIAL_NAME_PARTS. Every value of such a header is redacted, a template like
 * `${request_id}` included: the rule is about names, never about guessing what a value holds.
 */

/** What every read shows instead of a credential header's value. */
export const REDACTED_VALUE = '<redacted>';

/** Header names that carry credentials whatever their wording. */
export const CREDENTIAL_HEADER_NAMES: ReadonlySet<string> = new Set([
  'authorization',
  'proxy-authorization',
  'authentication',
  'cookie',
  'x-api-key',
  'api-key',
  'apikey',
  'x-auth',
  'x-auth-token',
  'x-access-token',
  'x-amz-security-token',
  'x-functions-key',
  'ocp-apim-subscription-key',
]);

/** Parts of a name that make it a credential header (`x-vault-token`, `x-client-secret`, `x-hub-signature`, …). */
export const CREDENTIAL_NAME_PARTS: readonly string[] = [
  'token',
  'secret',
  'password',
  'passwd',
  'api-key',
  'apikey',
  'credential',
  'signature',
  'session',
  'private-key',
];

/** Whether a header's value is a credential (write-only). */
export function isCredentialHeader(name: string): boolean {
  const normalized = name.toLowerCase().replaceAll('_', '-');
  return (
    CREDENTIAL_HEADER_NAMES.has(normalized) || CREDENTIAL_NAME_PARTS.some((part) => normalized.includes(part))
  );
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** A `{ name: value }` map with the values of credential headers replaced by REDACTED_VALUE. */
export function redactedHeaderMap(map: unknown): unknown {
  if (!isRecord(map)) return map;
  return Object.fromEntries(
    Object.entries(map).map(([name, value]) => [name, isCredentialHeader(name) ? REDACTED_VALUE : value]),
  );
}

/** A request header transform (`{ set, add, remove }`) with its credential values redacted; anything else as it is. */
export function redactedHeaderTransform<T>(transform: T): T {
  if (!isRecord(transform)) return transform;
  const copy: Record<string, unknown> = { ...transform };
  for (const part of ['set', 'add'] as const) {
    if (part in copy) copy[part] = redactedHeaderMap(copy[part]);
  }
  return copy as T;
}

/**
 * A deep copy of `value` in which every `request_headers` member (a route, a route event's data, a
 * config, a diff's before/after) has its credential values redacted.
 */
export function redactedCredentialHeaders<T>(value: T): T {
  return redactDeep(value) as T;
}

function redactDeep(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redactDeep);
  if (!isRecord(value)) return value;
  const copy: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    copy[key] = key === 'request_headers' ? redactedHeaderTransform(item) : redactDeep(item);
  }
  return copy;
}
