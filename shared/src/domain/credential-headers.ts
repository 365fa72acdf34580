import { asOriginsReadIt } from '../http/cgi-spellings.js';
import { formDecoded } from '../http/form-decoding.js';
import { dottedParameterKey, parameterKey } from '../http/query-parameter-spellings.js';

/**
 * Credentials a route sends to its origin are write-only, like API keys: the values of credential
 * request headers (`request_headers.set` / `.add`, e.g. an origin's `authorization: Bearer …`) and of
 * credential query parameters (`query.set` / `.add`, e.g. `api_key`, `access_token`, `sig`). The event
 * log and the gateways' snapshots keep the value, every read of the admin API — the resources, the
 * tenant's config and its document, diffs, plans, explain, the audit log — shows REDACTED_VALUE
 * instead, to every role (README "Route policies"). A write that carries the placeholder as such a
 * value keeps the stored value (control plane: domain/credential-headers.ts).
 *
 * Which headers: a name (compared case-insensitively, `_` and `.` read as `-`) in CREDENTIAL_HEADER_NAMES, or
 * containing one of CREDENTIAL_NAME_PARTS. Which query parameters: the same, or a name (same
 * normalization) in CREDENTIAL_QUERY_PARAM_NAMES. Every value of such a header or parameter is
 * redacted, a template like `${request_id}` included: the rule is about names, never about guessing
 * what a value holds.
 *
 * Configured URLs (origin targets, the OIDC jwks_url) may hold credentials an earlier release accepted:
 * every read shows them by urlWithoutCredentials, and the gateways' snapshots carry them without those
 * credentials (projections/src/snapshots/fold.ts): no gateway sends them.
 */

/** What every read shows instead of a credential header's or query parameter's value. */
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

/**
 * Parts of a name that make it a credential header (`x-vault-token`, `x-client-secret`, `x-hub-signature`,
 * …). A bare `key` is no part (`x-cache-key` is not a credential), the kinds of keys APIs take are:
 * Cloudflare's `X-Auth-Key`, Parse's `X-Parse-Master-Key`, Datadog's `DD-Application-Key`, `X-App-Key`,
 * `X-Access-Key`, `X-Client-Key`, `X-Subscription-Key`.
 */
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
  'auth-key',
  'master-key',
  'access-key',
  'accesskey',
  'app-key',
  'appkey',
  'application-key',
  'client-key',
  'subscription-key',
];

/** As CGI-style origins read a header's name (asOriginsReadIt: PHP's `X.Api.Key` is its X-Api-Key too). */
const normalizedName = (name: string) => asOriginsReadIt(name.toLowerCase());

/** Whether a header's value is a credential (write-only). */
export function isCredentialHeader(name: string): boolean {
  const normalized = normalizedName(name);
  return (
    CREDENTIAL_HEADER_NAMES.has(normalized) || CREDENTIAL_NAME_PARTS.some((part) => normalized.includes(part))
  );
}

/**
 * Query parameter names that carry credentials beyond the header rule, matched whole (so `key` but
 * not `cache_key` or `keyword`, `code` but not `country_code`): `key` (Google APIs and many more),
 * `sig` (Azure SAS), `auth` (Firebase), `hmac` (Shopify-style signed requests), `jwt`, `code`
 * (Azure Functions keys, OAuth authorization codes), `access-key` / `accesskey` (APIs that take their
 * key as `access_key`), `subscription-key` (Azure API Management).
 */
export const CREDENTIAL_QUERY_PARAM_NAMES: ReadonlySet<string> = new Set([
  'key',
  'sig',
  'auth',
  'hmac',
  'jwt',
  'code',
  'access-key',
  'accesskey',
  'subscription-key',
]);

/**
 * Whether a query parameter's value is a credential (write-only): a credential header's name (so
 * `api_key`, `access_token`, `client_secret`, `password`, `X-Amz-Signature`, `X-Amz-Security-Token`,
 * `session_id`) or one of CREDENTIAL_QUERY_PARAM_NAMES.
 */
export function isCredentialQueryParam(name: string): boolean {
  if (isCredentialName(name)) return true;
  // As origins read it (PHP: `api.key` is `api_key`, `key[0]` is `key`): its value reaches them as that one.
  const key = parameterKey(name);
  if (isCredentialName(key) || isCredentialBase(key)) return true;
  // ASP.NET Core and Spring read `sig.v` as a property of `sig` (`sig[v]`).
  const dotted = dottedParameterKey(name);
  return dotted !== undefined && isCredentialBase(dotted);
}

/** Whether a key with `[…]` after its base (`key[0]`) is a credential's: its base is one. */
function isCredentialBase(key: string): boolean {
  const bracket = key.indexOf('[');
  return bracket > 0 && isCredentialName(key.slice(0, bracket));
}

function isCredentialName(name: string): boolean {
  return isCredentialHeader(name) || CREDENTIAL_QUERY_PARAM_NAMES.has(normalizedName(name));
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * The route fields whose `set` / `add` maps may hold credentials, each with its rule for names:
 * request headers and query parameters (response headers go to clients, not origins).
 */
export const CREDENTIAL_TRANSFORMS = {
  request_headers: isCredentialHeader,
  query: isCredentialQueryParam,
} as const satisfies Record<string, (name: string) => boolean>;
export type CredentialTransformField = keyof typeof CREDENTIAL_TRANSFORMS;

export function isCredentialTransformField(field: string): field is CredentialTransformField {
  return Object.hasOwn(CREDENTIAL_TRANSFORMS, field);
}

/**
 * The param of a validation issue whose message quotes part of the value refused (a template's unknown
 * `${…}`): the same message without the quote.
 */
export const UNQUOTED_MESSAGE = 'unquoted_message';

/**
 * Whether an issue's path is the value of a credential a route writes (`…request_headers.set.<name>`,
 * `…query.add.<name>`, the name a credential's by CREDENTIAL_TRANSFORMS).
 */
export function isCredentialValuePath(path: readonly PropertyKey[]): boolean {
  const [field, part, name] = path.slice(-3);
  return (
    typeof field === 'string' &&
    isCredentialTransformField(field) &&
    (part === 'set' || part === 'add') &&
    typeof name === 'string' &&
    CREDENTIAL_TRANSFORMS[field](name)
  );
}

/**
 * What a validation issue says to the caller: a credential's value is never quoted back, not even the
 * part a refusal names (answers are printed in CI logs, which mask a secret only whole).
 */
export function answeredIssueMessage(issue: {
  readonly path: readonly PropertyKey[];
  readonly message: string;
  readonly params?: Record<string, unknown> | undefined;
}): string {
  const unquoted = issue.params?.[UNQUOTED_MESSAGE];
  return typeof unquoted === 'string' && isCredentialValuePath(issue.path) ? unquoted : issue.message;
}

/** A `{ name: value }` map with the values of credential names (by `isCredential`) replaced by REDACTED_VALUE. */
export function redactedMap(map: unknown, isCredential: (name: string) => boolean): unknown {
  if (!isRecord(map)) return map;
  return Object.fromEntries(
    Object.entries(map).map(([name, value]) => [name, isCredential(name) ? REDACTED_VALUE : value]),
  );
}

/** A `{ name: value }` map of request headers with the values of credential headers replaced by REDACTED_VALUE. */
export function redactedHeaderMap(map: unknown): unknown {
  return redactedMap(map, isCredentialHeader);
}

/**
 * A route's `request_headers` or `query` transform (`{ set, add, remove }`) with its credential values
 * redacted; anything else (null, the array of `match.query`, a string) as it is.
 */
export function redactedTransform<T>(field: CredentialTransformField, transform: T): T {
  if (!isRecord(transform)) return transform;
  const copy: Record<string, unknown> = { ...transform };
  for (const part of ['set', 'add'] as const) {
    if (part in copy) copy[part] = redactedMap(copy[part], CREDENTIAL_TRANSFORMS[field]);
  }
  return copy as T;
}

/** A request header transform (`{ set, add, remove }`) with its credential values redacted; anything else as it is. */
export function redactedHeaderTransform<T>(transform: T): T {
  return redactedTransform('request_headers', transform);
}

/** A query transform (`{ set, add, remove }`) with its credential values redacted; anything else as it is. */
export function redactedQueryTransform<T>(transform: T): T {
  return redactedTransform('query', transform);
}

/**
 * Members holding a URL a tenant configured for the gateways to reach: an origin target's `url` (and
 * an origin's first-target `url`) and `settings.oidc.jwks_url`. Commands refuse user information in
 * them, and a query in an origin's, but earlier releases recorded both, and the event log keeps them.
 */
export const CONFIGURED_URL_FIELDS: ReadonlySet<string> = new Set(['url', 'jwks_url']);

/**
 * `?a=1&api_key=…` with the values of credential query parameters replaced by REDACTED_VALUE. Pairs are
 * split at `&`, and within one at `;` too, as Go before 1.17, Python before 3.9.2 and Perl's CGI read
 * them: `v=2;api_key=…` holds a key for those. A credential's pair is redacted whole, `;` included
 * (its value to the others).
 */
function redactedSearch(search: string): string {
  if (search.length <= 1) return search;
  const parts = search
    .slice(1)
    .split('&')
    .map((part) => redactedPair(part) ?? (part.includes(';') ? redactedPairsWithin(part) : part));
  return `?${parts.join('&')}`;
}

/** `a=1;api_key=…` with each `;` pair of a credential's name redacted (redactedPair). */
function redactedPairsWithin(part: string): string {
  return part
    .split(';')
    .map((pair) => redactedPair(pair) ?? pair)
    .join(';');
}

/** `name=…` of a credential's name as `name=REDACTED_VALUE`, undefined for any other pair. */
function redactedPair(pair: string): string | undefined {
  const equals = pair.indexOf('=');
  const name = equals < 0 ? pair : pair.slice(0, equals);
  // Decoded as origins decode it: an escape that is not UTF-8 (`%FF`, `%ZZ`) leaves the others decoded.
  return isCredentialQueryParam(formDecoded(name)) ? `${name}=${REDACTED_VALUE}` : undefined;
}

/**
 * A configured URL as every read shows it: without user information (`user:password@`, which no
 * gateway ever sent) and with the values of credential query parameters redacted. A URL without either
 * is returned exactly as written, and text that is not a URL as it is.
 */
export function urlWithoutCredentials(text: string): string {
  const url = URL.parse(text);
  if (url === null) return text;
  const search = redactedSearch(url.search);
  if (url.username === '' && url.password === '' && search === url.search) return text;
  return `${url.protocol}//${url.host}${url.pathname}${search}${url.hash}`;
}

/**
 * A configured URL without its user information (`user:password@`), as a gateway needs it: no
 * connection or key set fetch sends it. A URL without user information, and text that is not a URL, as
 * it is.
 */
export function urlWithoutUserInfo(text: string): string {
  const url = URL.parse(text);
  if (url === null || (url.username === '' && url.password === '')) return text;
  return `${url.protocol}//${url.host}${url.pathname}${url.search}${url.hash}`;
}

/**
 * A deep copy of `value` in which every `request_headers` and every `query` member (a route, a route
 * event's data, a config, a diff's before/after, an explanation's policies) has its credential values
 * redacted, and every configured URL (CONFIGURED_URL_FIELDS) is shown by urlWithoutCredentials. A
 * `query` that is not a transform (a route's `match.query` list, explain's request query string) is
 * left as it is. `key` is the member `value` is held in, when it is one.
 */
export function redactedCredentials<T>(value: T, key?: string): T {
  return redactDeep(value, key) as T;
}

function redactDeep(value: unknown, key?: string): unknown {
  if (typeof value === 'string') {
    return key !== undefined && CONFIGURED_URL_FIELDS.has(key) ? urlWithoutCredentials(value) : value;
  }
  if (Array.isArray(value)) return value.map((item) => redactDeep(item));
  if (!isRecord(value)) return value;
  const copy: Record<string, unknown> = {};
  for (const [member, item] of Object.entries(value)) {
    copy[member] = isCredentialTransformField(member)
      ? redactedTransform(member, item)
      : redactDeep(item, member);
  }
  return copy;
}
