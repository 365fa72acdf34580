import { z } from 'zod';
import { asOriginsReadIt } from '../http/cgi-spellings.js';
import { HOP_BY_HOP_HEADERS } from '../http/hop-by-hop-headers.js';
import { namedParameterKeys } from '../http/query-parameter-spellings.js';
import { readCidr } from '../net/ip-literal.js';
import { UNQUOTED_MESSAGE } from './credential-headers.js';
import { uuidId } from './uuid-id.js';

/**
 * The route policies beyond auth, rate limit and cache: CORS, IP rules, header / path / query
 * transforms, timeouts and retries, body and header limits, traffic split, request matching beyond
 * path and method, fixed responses and redirects. The control plane validates them (these schemas plus
 * the cross-field rules of the route decider), events and snapshots carry them, and each gateway
 * compiles them onto the route as stages. snake_case, as in the admin API.
 */

export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];
/** RFC 9110 §9.2.2: the methods a retry may repeat without being listed explicitly. */
export const IDEMPOTENT_METHODS: readonly HttpMethod[] = ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE'];

// ---- value templates ----

/** What a header or query value may name as `${…}`; resolved per request by the gateway. */
export const TEMPLATE_VARIABLES = [
  'client_ip',
  'request_id',
  'tenant_id',
  'consumer_id',
  'route_id',
] as const;
export type TemplateVariable = (typeof TEMPLATE_VARIABLES)[number];
/** What a redirect location may name as `${…}`. */
export const LOCATION_VARIABLES = ['path', 'query', 'host'] as const;
export type LocationVariable = (typeof LOCATION_VARIABLES)[number];

export type TemplatePart<Variable extends string> = { literal: string } | { variable: Variable };

/**
 * `a-${client_ip}-b` → literal and variable parts; an error naming the first unknown `${…}`, and the
 * same error without quoting any of the text (`unquoted`: what a credential's refusal says).
 */
export function parseTemplate<Variable extends string>(
  text: string,
  variables: readonly Variable[],
): { ok: true; parts: TemplatePart<Variable>[] } | { ok: false; issue: string; unquoted: string } {
  const parts: TemplatePart<Variable>[] = [];
  let at = 0;
  while (at < text.length) {
    const open = text.indexOf('${', at);
    if (open < 0) {
      parts.push({ literal: text.slice(at) });
      break;
    }
    if (open > at) parts.push({ literal: text.slice(at, open) });
    const close = text.indexOf('}', open);
    if (close < 0) return { ok: false, issue: 'has an unclosed ${', unquoted: 'has an unclosed ${' };
    const name = text.slice(open + 2, close);
    if (!(variables as readonly string[]).includes(name)) {
      const known = variables.map((v) => `\${${v}}`).join(', ');
      return {
        ok: false,
        issue: `names \${${name}}; the variables are ${known}`,
        unquoted: `names a \${…} that is no variable; the variables are ${known}`,
      };
    }
    parts.push({ variable: name as Variable });
    at = close + 1;
  }
  return { ok: true, parts };
}

/**
 * The most `${…}` a value in a command names. Each is resolved per request, and some are the client's
 * to choose (a redirect's ${path} and ${query}, a token's subject in ${consumer_id}): a value naming one
 * hundreds of times would make each answer hundreds of times what the client sent. Stored routes keep
 * what they were recorded with (the gateway bounds a redirect's Location to 32 KiB anyway).
 */
export const MAX_TEMPLATE_VARIABLES = 8;

function template<Variable extends string>(
  schema: z.ZodString,
  variables: readonly Variable[],
  command: boolean,
) {
  return schema.superRefine((value, ctx) => {
    const parsed = parseTemplate(value, variables);
    if (!parsed.ok) {
      ctx.addIssue({
        code: 'custom',
        message: parsed.issue,
        params: { [UNQUOTED_MESSAGE]: parsed.unquoted },
      });
      return;
    }
    const named = parsed.parts.filter((part) => 'variable' in part).length;
    if (command && named > MAX_TEMPLATE_VARIABLES) {
      ctx.addIssue({
        code: 'custom',
        message: `names ${named} variables; a value may name at most ${MAX_TEMPLATE_VARIABLES}`,
      });
    }
  });
}

// ---- names and values ----

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Whether `name` can be a header or cookie name (an RFC 9110 token; RFC 6265's cookie-name is one). */
export function isFieldToken(name: string): boolean {
  return TOKEN.test(name);
}
const QUERY_NAME = /^[A-Za-z0-9._~:[\]-]+$/;

/** An HTTP field name (RFC 9110 token), stored lower-case. */
export const headerName = z
  .string()
  .min(1, 'must not be empty')
  .max(100, 'must be at most 100 characters')
  .regex(TOKEN, 'must be an HTTP header name (letters, digits, -, _ …)')
  .toLowerCase();

/**
 * Why a command may not name the header `name` (any case) in a list, or undefined. node:http drops a
 * request's `__proto__` line (it assigns each header to a plain object), and the gateway drops an
 * origin's (forwarded-headers.ts), so a condition, key, bypass or CORS entry on it would never apply,
 * or (HTTP/2 keeps it) would by the protocol the client spoke. `constructor` and `prototype` arrive as
 * sent and gateways read them as sent (sentHeader), so they stay names like any other.
 */
export function unsentHeaderNameIssue(name: string): string | undefined {
  return name.toLowerCase() === '__proto__'
    ? "is __proto__, a header name no request or answer through the gateway carries (node:http drops it from HTTP/1.1 requests, the gateway from origins' answers)"
    : undefined;
}

/** An issue at `path` for each name of `names` that unsentHeaderNameIssue refuses. */
function refuseUnsentHeaderNames(
  names: readonly string[],
  path: ReadonlyArray<string | number>,
  ctx: z.RefinementCtx,
): void {
  names.forEach((name, index) => {
    const issue = unsentHeaderNameIssue(name);
    if (issue !== undefined) ctx.addIssue({ code: 'custom', path: [...path, index], message: issue });
  });
}

/**
 * A header value without control characters (CR, LF, NUL can never reach a header). RFC 9110 allows
 * obs-text (bytes 0x80–0xff) and a value in a JS string goes out as Latin-1, so U+0080–U+009F would be
 * sent as the C1 bytes 0x80–0x9f (0x9b is CSI on its own) and shown raw to whoever reads the config:
 * commands refuse them (`command`). Stored routes keep the looser rule they were recorded under, so
 * events already in the log still fold (as RATE_LIMIT_BOUNDS does for rate limits).
 */
const headerValueTextOf = (command: boolean) =>
  z
    .string()
    .max(1000, 'must be at most 1000 characters')
    .regex(
      command ? /^[\t\x20-\x7e\xa0-\xff]*$/ : /^[\t\x20-\x7e\x80-\xff]*$/,
      command
        ? 'must not contain control characters (U+0000–U+001F but tab, U+007F–U+009F)'
        : 'must not contain control characters',
    );
const headerValueText = headerValueTextOf(false);
const headerValueTextInput = headerValueTextOf(true);

/** What /openapi.json says of a value in a command (`false`: a stored route, said nothing of). */
function withDescription<Schema extends z.ZodType>(schema: Schema, description: string | false): Schema {
  return description === false ? schema : schema.meta({ description });
}

const TEMPLATE_RULE = `may name at most ${MAX_TEMPLATE_VARIABLES} variables: ${TEMPLATE_VARIABLES.map((v) => `\${${v}}`).join(', ')}`;

const headerValueTemplateOf = (command: boolean) => {
  const value = template(command ? headerValueTextInput : headerValueText, TEMPLATE_VARIABLES, command);
  return withDescription(value, command && TEMPLATE_RULE);
};

/** C0 and DEL; with `c1` (commands), U+0080–U+009F too (see headerValueTextOf). */
export function hasControlCharacter(value: string, c1: boolean): boolean {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code < 0x20 || code === 0x7f || (c1 && code >= 0x80 && code <= 0x9f)) return true;
  }
  return false;
}

/**
 * Why no request header carries `value` as a gateway reads it (a header condition's `exact` or `prefix`,
 * a split override's value), or undefined. Gateways read a header line's bytes as Latin-1 and without
 * the spaces and tabs around it (RFC 9110 §5.5), and no request carries a control character but a tab:
 * a condition on any other value would never be met, and its route never taken. Bytes 0x80–0x9F are
 * carried (obs-text): every client sending UTF-8 sends them (`€` is read as `â\u0082¬`).
 */
export function unreadHeaderValueIssue(value: string, kind: 'exact' | 'prefix'): string | undefined {
  if (!/^[\t\x20-\x7e\x80-\xff]*$/.test(value)) {
    return 'must be text a request header carries as gateways read its bytes, as Latin-1: printable ASCII, tabs and U+0080–U+00FF (a character a client sends as UTF-8 is its bytes: `€` is U+00E2 U+0082 U+00AC); no control characters';
  }
  const edge = kind === 'exact' ? /^[\t ]|[\t ]$/ : /^[\t ]/;
  if (edge.test(value)) {
    return `must not ${kind === 'exact' ? 'start or end' : 'start'} with a space or tab: gateways read a header without the whitespace around it`;
  }
  return undefined;
}

/** The longest query parameter name a route names (in a transform or a condition). */
export const QUERY_PARAM_NAME_MAX_LENGTH = 100;
const queryParamName = z
  .string()
  .min(1, 'must not be empty')
  .max(QUERY_PARAM_NAME_MAX_LENGTH, `must be at most ${QUERY_PARAM_NAME_MAX_LENGTH} characters`)
  .regex(QUERY_NAME, 'must be a query parameter name (letters, digits, . _ ~ : [ ] -)');
const queryValueTemplateOf = (command: boolean) => {
  const value = template(
    z
      .string()
      .max(1000, 'must be at most 1000 characters')
      .refine((value) => !hasControlCharacter(value, command), {
        error: command
          ? 'must not contain control characters (U+0000–U+001F, U+007F–U+009F)'
          : 'must not contain control characters',
      }),
    TEMPLATE_VARIABLES,
    command,
  );
  return withDescription(value, command && TEMPLATE_RULE);
};

const cookieName = z
  .string()
  .min(1, 'must not be empty')
  .max(100, 'must be at most 100 characters')
  .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'must be a cookie name');

/**
 * Names a `{ name: value }` map never takes. JSON.parse makes `"__proto__"` an ordinary own key, but
 * zod's record leaves it out of its copy (an assignment would set the prototype instead), so the entry
 * would vanish silently. `constructor` and `prototype` name the same plumbing. Commands are refused
 * naming the key (the `…Input` schemas); stored routes load as before (a stored `__proto__` entry was
 * never kept).
 */
export const RESERVED_MAP_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);
const RESERVED_MAP_KEY_MESSAGE = 'is a reserved name (__proto__, constructor and prototype are not allowed)';
/** What /openapi.json says of a map that refuses the reserved names. */
const RESERVED_NAMES_SCHEMA = { propertyNames: { not: { enum: [...RESERVED_MAP_KEYS] } } };
/** The same for a map that refuses them in any case (`__Proto__`): `[cC][oO]…` (JSON Schema has no `i` flag). */
const RESERVED_NAMES_ANY_CASE_SCHEMA = {
  propertyNames: {
    not: {
      pattern: `^(?:${[...RESERVED_MAP_KEYS]
        .map((name) => name.replace(/[a-z]/g, (letter) => `[${letter}${letter.toUpperCase()}]`))
        .join('|')})$`,
    },
  },
};

/**
 * A `{ name: value }` map of at most `max` entries whose names follow `key` (checked one by one, so a
 * bad name is reported at its own path with its own message). Names are compared case-insensitively.
 * With `refuseReserved` (command input), reserved names (RESERVED_MAP_KEYS) are refused as sent, in any
 * case: gateways lower-case header names, so `__Proto__` would be lost there as `__proto__` is here.
 */
function boundedRecord<Value extends z.ZodType>(
  key: z.ZodType<string>,
  value: Value,
  max: number,
  namePattern: RegExp,
  refuseReserved: boolean,
) {
  const entries = z.record(z.string().min(1).max(100).regex(namePattern), value);
  if (!refuseReserved) {
    return entries.superRefine((record, ctx) => refuseBadNames(Object.keys(record), key, max, ctx));
  }
  // zod's intersection reports a name that one side's key schema refuses only when the other side
  // refuses it too (and then skips the record's refinements), so the names are checked as sent, beside.
  const namesAsSent = z
    .unknown()
    .superRefine((input, ctx) => {
      if (typeof input !== 'object' || input === null || Array.isArray(input)) return;
      const names = Object.keys(input);
      const reserved = (name: string) => RESERVED_MAP_KEYS.has(name.toLowerCase());
      refuseReservedNames(names, ctx, reserved);
      refuseBadNames(
        names.filter((name) => !reserved(name)),
        key,
        max,
        ctx,
      );
    })
    .meta(RESERVED_NAMES_ANY_CASE_SCHEMA);
  return z.intersection(entries, namesAsSent);
}

/** An issue at each name `key` refuses or that repeats another in another case, and one beyond `max`. */
function refuseBadNames(
  names: readonly string[],
  key: z.ZodType<string>,
  max: number,
  ctx: z.RefinementCtx,
): void {
  if (names.length > max) ctx.addIssue({ code: 'custom', message: `at most ${max} entries` });
  const seen = new Set<string>();
  for (const name of names) {
    const checked = key.safeParse(name);
    if (!checked.success) {
      ctx.addIssue({
        code: 'custom',
        path: [name],
        message: checked.error.issues[0]?.message ?? 'is not allowed',
      });
    } else if (seen.has(name.toLowerCase())) {
      ctx.addIssue({
        code: 'custom',
        path: [name],
        message: 'is listed twice (names are case-insensitive)',
      });
    }
    seen.add(name.toLowerCase());
  }
}

function refuseReservedNames(
  names: readonly string[],
  ctx: z.RefinementCtx,
  reserved: (name: string) => boolean = (name) => RESERVED_MAP_KEYS.has(name),
): void {
  for (const name of names) {
    if (reserved(name))
      ctx.addIssue({ code: 'custom', path: [name], message: RESERVED_MAP_KEY_MESSAGE, input: name });
  }
}

/**
 * Refuses reserved names (RESERVED_MAP_KEYS) at their own path, reading the input as sent: zod's record
 * (and a loose object's extra members) skips an own `__proto__` key before its key schema or any
 * refinement sees it. Intersected with the record or object, whose output it leaves as it is (its own
 * output is the same entries, unchanged); z.preprocess would work too, but a transform hides every
 * enclosing default from /openapi.json and the tenant document's JSON Schema.
 */
export const reservedNamesRefused = z
  .unknown()
  .superRefine((input, ctx) => {
    if (typeof input !== 'object' || input === null || Array.isArray(input)) return;
    refuseReservedNames(Object.keys(input), ctx);
  })
  .meta(RESERVED_NAMES_SCHEMA);

// ---- header transforms ----

/** Request headers the gateway owns: never set, added or removed by a transform. */
export const REQUEST_HEADERS_NOT_TRANSFORMED: readonly string[] = [
  'host',
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'content-length',
  'expect',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'forwarded',
  'x-request-id',
];
/** Response headers the gateway owns. */
export const RESPONSE_HEADERS_NOT_TRANSFORMED: readonly string[] = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'content-length',
  'x-request-id',
];
const CONNECTION_HEADER_REFUSED = 'is hop-by-hop (it concerns one connection) and cannot be set by a route';
/**
 * Request headers the gateway drops from every peer, trusted or not (README "URL-rewrite and
 * method-override headers"): origins route or take the method by them, while the gateway chose the
 * route and its auth. A route changes the path with rewrite_path; so commands refuse them, and
 * gateways drop them from routes stored before the rule.
 */
export const ROUTING_OVERRIDE_HEADERS: readonly string[] = [
  'x-original-url',
  'x-rewrite-url',
  'x-http-method-override',
  'x-http-method',
  'x-method-override',
];
/** A request header a route's transform never writes (refused in commands, dropped from stored routes). */
export function requestHeaderNeverWritten(name: string): boolean {
  const lower = name.toLowerCase();
  return (
    HOP_BY_HOP_HEADERS.includes(lower) ||
    ROUTING_OVERRIDE_HEADERS.includes(lower) ||
    gatewayHeaderAsOriginsReadIt(lower) !== undefined
  );
}

/**
 * The request header that a name (lower case) spelled with `_` or `.` is to CGI-style origins (asOriginsReadIt),
 * when a route may not write that one; else undefined. A route's X_Real_IP reached PHP, Rack and WSGI
 * origins beside the gateway's X-Real-IP, and its X_VantageEdge_User_Id as the identity header they trust.
 */
function gatewayHeaderAsOriginsReadIt(lower: string): string | undefined {
  const read = asOriginsReadIt(lower);
  return read !== lower && requestHeaderRefusal(read) !== undefined ? read : undefined;
}

/** Why a route's transform may not touch a request header (lower case); undefined when it may. */
function requestHeaderRefusal(lower: string): string | undefined {
  if (
    REQUEST_HEADERS_NOT_TRANSFORMED.includes(lower) ||
    REQUEST_HEADERS_WRITTEN_AFTER_TRANSFORMS.includes(lower) ||
    lower.startsWith(GATEWAY_HEADER_PREFIX)
  )
    return 'is set by the gateway and cannot be changed';
  if (HOP_BY_HOP_HEADERS.includes(lower)) return CONNECTION_HEADER_REFUSED;
  if (ROUTING_OVERRIDE_HEADERS.includes(lower))
    return 'is dropped from every request (origins route by it): use rewrite_path';
  return undefined;
}
/** Identity headers (x-vantageedge-*) are the gateway's alone: an origin trusts them. */
export const GATEWAY_HEADER_PREFIX = 'x-vantageedge-';

/** Request headers the gateway writes on every request to an origin, whatever the client sent. */
export const REQUEST_HEADERS_GATEWAY_WRITES: readonly string[] = [
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-forwarded-port',
  'x-forwarded-prefix',
  'forwarded',
  'x-real-ip',
  'x-request-id',
];

/**
 * A request header whose value at the origin is the gateway's (forwarding, X-Real-IP, X-Request-Id,
 * the identity headers): it follows the client's address, connection or credentials, not what the
 * client itself sent. A cache key (vary_headers) can only read the client's value, so it never names one.
 */
export function requestHeaderWrittenByGateway(name: string): boolean {
  const lower = name.toLowerCase();
  return REQUEST_HEADERS_GATEWAY_WRITES.includes(lower) || lower.startsWith(GATEWAY_HEADER_PREFIX);
}

/**
 * Headers that tell an origin who the client is or where the request came from. A client can write
 * any of them, so they are believed (kept) only from a trusted proxy; otherwise they are dropped or
 * replaced by the gateway's own values.
 */
const CLIENT_ADDRESS_HEADERS = [
  'true-client-ip',
  'x-client-ip',
  'cf-connecting-ip',
  'fastly-client-ip',
  'x-cluster-client-ip',
  // PHP's usual client-address lookup reads these before REMOTE_ADDR.
  'client-ip',
  'x-forwarded',
  'forwarded-for',
] as const;

/**
 * The scheme besides X-Forwarded-Proto: Rack reads X-Forwarded-Ssl and X-Forwarded-Scheme before
 * X-Forwarded-Proto, Tornado X-Scheme. Others read one of these when X-Forwarded-Proto does not say
 * https: CodeIgniter and much PHP code Front-End-Https (Microsoft's), gunicorn and Django set-ups
 * X-Forwarded-Protocol, Go and Node code X-Url-Scheme, WordPress sites with Really Simple SSL's
 * load-balancing fix CF-Visitor (Cloudflare's), CloudFront-Forwarded-Proto and X-Proto, Azure App
 * Service apps X-Arr-Ssl. From a client on plain HTTP each would make the request an HTTPS one to the
 * origin, whose answer (an HTTPS-only site's page instead of its redirect) the cache keys as HTTP.
 * Kept, like CLIENT_ADDRESS_HEADERS, only from a trusted proxy.
 */
export const SCHEME_HEADERS = [
  'x-forwarded-ssl',
  'x-forwarded-scheme',
  'x-scheme',
  'front-end-https',
  'x-forwarded-protocol',
  'x-url-scheme',
  'cf-visitor',
  'cloudfront-forwarded-proto',
  'x-proto',
  'x-arr-ssl',
] as const;

/**
 * What a trusted proxy's request may carry on to the origin beyond the X-Forwarded-* the gateway writes
 * (the gateway passes each on spelled so only; a client's other spellings never reach the origin).
 */
export const TRUSTED_PROXY_HEADERS = [...CLIENT_ADDRESS_HEADERS, ...SCHEME_HEADERS] as const;

/**
 * Whether a request header name, in any spelling origins read as it (`true_client_ip`), is one the
 * gateway passes on only from a trusted proxy (TRUSTED_PROXY_HEADERS). A match condition, split key or
 * hash key on one reads it as the origin gets the request: a trusted proxy's line of that name, and
 * from any other client nothing, whatever it wrote.
 */
export function keptOnlyFromTrustedProxy(name: string): boolean {
  return (TRUSTED_PROXY_HEADERS as readonly string[]).includes(asOriginsReadIt(name.toLowerCase()));
}

/**
 * Set-Cookie is written only by the origin: the gateway keeps an origin's cookie `Domain` on the
 * tenant's own hosts, and a cookie from route configuration would get past that (one with
 * `Domain=<platform base domain>` reaches every tenant). A transform may remove it.
 */
const SET_COOKIE_REFUSED =
  'set-cookie cannot come from a route policy: only the origin sets cookies (their Domain stays on the tenant’s hosts)';

/**
 * Clear-Site-Data tells a browser to clear a site's data; "cookies" clears the cookies of the whole
 * registrable domain — for a tenant's platform subdomain, every tenant's. From an origin the gateway
 * drops those directives on platform hosts; from route configuration (sent on every answer) it is refused.
 */
const CLEAR_SITE_DATA_REFUSED =
  'clear-site-data cannot come from a route policy: on a platform host it would clear every tenant’s cookies';

/**
 * Alt-Svc (RFC 7838) names another endpoint for the host: browsers keep it for up to its `ma` (with
 * `persist=1` across networks) and send the host's requests there. A host changes tenants (a freed
 * subdomain, a moved custom domain), and the endpoint would then take the next tenant's visitors, so
 * the gateway never sends it: an origin's is dropped, commands refuse it in route policies and
 * gateways drop it from routes stored before the rule.
 */
export const ALT_SVC = 'alt-svc';
const ALT_SVC_REFUSED =
  'alt-svc cannot come from a route policy: browsers would keep sending the host’s requests where it points, after the host went to another tenant';

/**
 * NEL (Network Error Logging) has browsers keep a reporting policy for the host (up to its max_age)
 * and report the host's later requests to the endpoint group it names: URL with query, status,
 * referrer, with success_fraction 1 every request. After the host went to another tenant, that
 * tenant's visitors would be reported to the first tenant's collector, so the gateway never sends it,
 * as Alt-Svc.
 */
export const NEL = 'nel';
const NEL_REFUSED =
  'nel cannot come from a route policy: browsers would keep reporting the host’s requests to the endpoint it names, after the host went to another tenant';

/**
 * Report-To (Reporting API, as browsers still read it) has browsers keep endpoint groups for the host —
 * with include_subdomains, for the hosts under it too — up to its max_age, and send the host's later
 * reports to them: NEL's, and documents' (CSP violations, deprecations, crashes; with the page's URL)
 * that name a group or go to `default`. As NEL, it would outlive the tenant's hold on the host. Its
 * successor Reporting-Endpoints configures only the document it comes with, and is relayed.
 */
export const REPORT_TO = 'report-to';
const REPORT_TO_REFUSED =
  'report-to cannot come from a route policy: browsers would keep sending the host’s reports to the endpoints it names, after the host went to another tenant (Reporting-Endpoints configures only its document)';

/** Response fields a browser keeps for the host after the answer: no tenant's answer carries them. */
export const HOST_BOUND_HEADERS: readonly string[] = [ALT_SVC, NEL, REPORT_TO];

function headerTransform(owned: readonly string[], neverWritten: readonly string[], command = false) {
  const refuseOwned = (name: string) =>
    owned.includes(name) || name.startsWith(GATEWAY_HEADER_PREFIX)
      ? `${name} is set by the gateway and cannot be changed`
      : undefined;
  const name = headerName.superRefine((value, ctx) => {
    const problem = refuseOwned(value);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });
  const writtenName = name.superRefine((value, ctx) => {
    if (neverWritten.includes(value)) ctx.addIssue({ code: 'custom', message: SET_COOKIE_REFUSED });
    if (command && neverWritten.length > 0 && value === 'clear-site-data')
      ctx.addIssue({ code: 'custom', message: CLEAR_SITE_DATA_REFUSED });
    if (command && neverWritten.length > 0 && value === ALT_SVC)
      ctx.addIssue({ code: 'custom', message: ALT_SVC_REFUSED });
    if (command && neverWritten.length > 0 && value === NEL)
      ctx.addIssue({ code: 'custom', message: NEL_REFUSED });
    if (command && neverWritten.length > 0 && value === REPORT_TO)
      ctx.addIssue({ code: 'custom', message: REPORT_TO_REFUSED });
  });
  const value = headerValueTemplateOf(command);
  const removed = z.array(name).max(30, 'at most 30 headers');
  return z.strictObject({
    /** Replaces the header (every line of it). */
    set: boundedRecord(writtenName, value, 30, TOKEN, command).default({}),
    /** Appends a line, keeping what is there. */
    add: boundedRecord(writtenName, value, 30, TOKEN, command).default({}),
    remove: command
      ? removed.superRefine((names, ctx) => refuseUnsentHeaderNames(names, [], ctx)).default([])
      : removed.default([]),
  });
}

export const requestHeaderTransform = headerTransform(REQUEST_HEADERS_NOT_TRANSFORMED, []);
/**
 * Headers the gateway writes on every request after the route's transform, refused in new commands. A
 * stored route that transforms one still loads (the gateway's value wins). CDN-Loop is the client's
 * list with the gateway's entry appended (RFC 8586: no proxy removes or changes another's entries).
 */
export const REQUEST_HEADERS_WRITTEN_AFTER_TRANSFORMS: readonly string[] = [
  'x-real-ip',
  'x-forwarded-port',
  'x-forwarded-prefix',
  'cdn-loop',
];
/** requestHeaderTransform as a command may give it. */
export const requestHeaderTransformInput = headerTransform(
  REQUEST_HEADERS_NOT_TRANSFORMED,
  [],
  true,
).superRefine((transform, ctx) => {
  const problem = (name: string) => {
    const lower = name.toLowerCase();
    const read = gatewayHeaderAsOriginsReadIt(lower);
    if (read !== undefined)
      return `${name} is ${read} to origins that read _ as - (PHP, Rack, WSGI; PHP . too): ${read} ${requestHeaderRefusal(read)}`;
    // Refused by the transform itself.
    if (REQUEST_HEADERS_NOT_TRANSFORMED.includes(lower) || lower.startsWith(GATEWAY_HEADER_PREFIX))
      return undefined;
    const refusal = requestHeaderRefusal(lower);
    return refusal === undefined ? undefined : `${name} ${refusal}`;
  };
  refuseNames(transform, problem, ctx);
});

/** An issue at `set.<name>`, `add.<name>` or `remove.<i>` for each name `problem` finds one in. */
function refuseNames(
  transform: HeaderTransform,
  problem: (name: string) => string | undefined,
  ctx: z.RefinementCtx,
): void {
  for (const part of ['set', 'add'] as const) {
    for (const name of Object.keys(transform[part])) {
      const message = problem(name);
      if (message !== undefined) ctx.addIssue({ code: 'custom', path: [part, name], message });
    }
  }
  transform.remove.forEach((name, i) => {
    const message = problem(name);
    if (message !== undefined) ctx.addIssue({ code: 'custom', path: ['remove', i], message });
  });
}
export const responseHeaderTransform = headerTransform(RESPONSE_HEADERS_NOT_TRANSFORMED, ['set-cookie']);
/** responseHeaderTransform as a command may give it. */
export const responseHeaderTransformInput = headerTransform(
  RESPONSE_HEADERS_NOT_TRANSFORMED,
  ['set-cookie'],
  true,
).superRefine((transform, ctx) => {
  const problem = (name: string) => {
    const lower = name.toLowerCase();
    return HOP_BY_HOP_HEADERS.includes(lower) && !RESPONSE_HEADERS_NOT_TRANSFORMED.includes(lower)
      ? `${name} ${CONNECTION_HEADER_REFUSED}`
      : undefined;
  };
  refuseNames(transform, problem, ctx);
});
export type HeaderTransform = z.infer<typeof requestHeaderTransform>;

/** The most names a query transform's `set`, `add` and `remove` each name. */
export const QUERY_TRANSFORM_MAX_NAMES = 30;

const queryTransformOf = (command: boolean) =>
  z.strictObject({
    /** Replaces every value of the parameter (or adds it). */
    set: boundedRecord(
      queryParamName,
      queryValueTemplateOf(command),
      QUERY_TRANSFORM_MAX_NAMES,
      QUERY_NAME,
      command,
    ).default({}),
    /** Appends `name=value`, keeping values already there. */
    add: boundedRecord(
      queryParamName,
      queryValueTemplateOf(command),
      QUERY_TRANSFORM_MAX_NAMES,
      QUERY_NAME,
      command,
    ).default({}),
    remove: z
      .array(queryParamName)
      .max(QUERY_TRANSFORM_MAX_NAMES, `at most ${QUERY_TRANSFORM_MAX_NAMES} parameters`)
      .default([]),
  });
export const queryTransform = queryTransformOf(false);
/** queryTransform as a command may give it. */
export const queryTransformInput = queryTransformOf(true).superRefine((transform, ctx) =>
  refuseOneParameterSetTwice(Object.keys(transform.set), ctx),
);

/**
 * An issue at `set.<name>` for a name origins read as a parameter an earlier `set` name already sets
 * (namedParameterKeys: `scopes` after `scopes[]`, `page[size]` after `page.size`): the origin would get
 * both values.
 */
function refuseOneParameterSetTwice(names: readonly string[], ctx: z.RefinementCtx): void {
  const setBy = new Map<string, string>();
  for (const name of names) {
    const keys = namedParameterKeys(name);
    const earlier = keys.map((key) => setBy.get(key)).find((other) => other !== undefined);
    if (earlier !== undefined && earlier.toLowerCase() !== name.toLowerCase()) {
      ctx.addIssue({
        code: 'custom',
        path: ['set', name],
        message: `is the same parameter as ${JSON.stringify(earlier)} to origins (PHP, Rails, Express, ASP.NET Core, Spring read both as one): set it once`,
      });
    }
    for (const key of keys) if (!setBy.has(key)) setBy.set(key, name);
  }
}
export type QueryTransform = z.infer<typeof queryTransform>;

// ---- path rewrite ----

const absolutePath = z
  .string()
  .min(1, 'must not be empty')
  .max(500, 'must be at most 500 characters')
  .regex(/^\/[A-Za-z0-9\-._~!$&'()*+,;=:@%/]*$/, 'must be a path starting with / (no query, no spaces)')
  .refine((path) => !/(^|\/)\.{1,2}(\/|$)/.test(path) && !path.includes('//'), {
    error: 'must not contain dot segments or empty segments',
  });

/**
 * Either a prefix replacement (`from_prefix` → `to_prefix`, whole segments) or a template whose
 * `:name` segments take the request's value of the route pattern's `:name` and whose trailing `*`
 * takes what the route's trailing `*` matched. No regular expressions.
 */
export const rewritePath = z
  .strictObject({
    from_prefix: absolutePath.optional(),
    to_prefix: absolutePath.optional(),
    template: absolutePath.optional(),
  })
  .superRefine((rewrite, ctx) => {
    const prefixForm = rewrite.from_prefix !== undefined || rewrite.to_prefix !== undefined;
    if (rewrite.template !== undefined && prefixForm) {
      ctx.addIssue({
        code: 'custom',
        path: ['template'],
        message: 'give either template or from_prefix/to_prefix',
      });
      return;
    }
    if (rewrite.template === undefined && !prefixForm) {
      ctx.addIssue({
        code: 'custom',
        path: ['template'],
        message: 'give template, or from_prefix and to_prefix',
      });
      return;
    }
    if (prefixForm && rewrite.from_prefix === undefined) {
      ctx.addIssue({ code: 'custom', path: ['from_prefix'], message: 'is required with to_prefix' });
    }
    if (prefixForm && rewrite.to_prefix === undefined) {
      ctx.addIssue({ code: 'custom', path: ['to_prefix'], message: 'is required with from_prefix' });
    }
    if (rewrite.template !== undefined) {
      const segments = rewrite.template.slice(1).split('/');
      segments.forEach((segment, index) => {
        if (segment.includes('*') && (segment !== '*' || index !== segments.length - 1)) {
          ctx.addIssue({
            code: 'custom',
            path: ['template'],
            message: '* is only allowed as the last segment',
          });
        }
        if (segment.startsWith(':') && !/^:[A-Za-z_][A-Za-z0-9_]*$/.test(segment)) {
          ctx.addIssue({ code: 'custom', path: ['template'], message: `${segment} is not a parameter name` });
        }
      });
    }
  });
export type RewritePath = z.infer<typeof rewritePath>;

// ---- CORS ----

/** `*`, an exact origin (`https://app.example.com`, `http://localhost:3000`), or `https://*.example.com`. */
const CORS_ORIGIN =
  /^https?:\/\/(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:\d{1,5})?$/;
const corsOrigin = z
  .string()
  .max(300, 'must be at most 300 characters')
  .toLowerCase()
  .refine((value) => value === '*' || CORS_ORIGIN.test(value), {
    error: 'must be *, an origin such as https://app.example.com, or https://*.example.com',
  });

export const corsPolicy = z
  .strictObject({
    allow_origins: z.array(corsOrigin).min(1, 'needs at least one origin').max(50, 'at most 50 origins'),
    /** Empty: the route's own methods (any method when the route lists none). */
    allow_methods: z.array(z.enum(HTTP_METHODS)).max(HTTP_METHODS.length).default([]),
    allow_headers: z.array(headerName).max(50, 'at most 50 headers').default([]),
    expose_headers: z.array(headerName).max(50, 'at most 50 headers').default([]),
    allow_credentials: z.boolean().default(false),
    max_age_seconds: z.number().int().min(0).max(86_400).default(600),
  })
  .superRefine((cors, ctx) => {
    if (cors.allow_credentials && cors.allow_origins.includes('*')) {
      ctx.addIssue({
        code: 'custom',
        path: ['allow_origins'],
        message: 'may not contain * when allow_credentials is true (browsers refuse it): list the origins',
      });
    }
  });
export type CorsPolicy = z.infer<typeof corsPolicy>;

/**
 * A CORS policy in a command. `*` is a header name to the gateway, never a wildcard: in `allow_headers`
 * (any header, to Kong and APISIX) it would have every preflight asking for a header refused, and in
 * `expose_headers` with credentials browsers read it as a name too. Stored routes keep what they were
 * recorded with (the gateway reads `*` as a name).
 */
export const corsPolicyInput = corsPolicy.superRefine((cors, ctx) => {
  refuseUnsentHeaderNames(cors.allow_headers, ['allow_headers'], ctx);
  refuseUnsentHeaderNames(cors.expose_headers, ['expose_headers'], ctx);
  const star = (list: 'allow_headers' | 'expose_headers', message: string) => {
    const index = cors[list].indexOf('*');
    if (index >= 0) ctx.addIssue({ code: 'custom', path: [list, index], message });
  };
  star('allow_headers', 'may not be *: list the headers a preflight may ask for (any other is refused)');
  if (cors.allow_credentials)
    star(
      'expose_headers',
      'may not be * when allow_credentials is true (browsers read it as a header name): list the headers',
    );
});

// ---- IP rules ----

export interface ParsedCidr {
  readonly network: string;
  readonly prefix: number;
  readonly family: 'ipv4' | 'ipv6';
}

/** `203.0.113.0/24`, `2001:db8::/32`, or a single address (/32, /128); undefined when malformed. */
export function parseCidr(text: string): ParsedCidr | undefined {
  const read = readCidr(text, CIDR_WORDS);
  if (read === undefined) return undefined;
  const network = read.networkEnd === text.length ? text : text.slice(0, read.networkEnd);
  return { network, prefix: read.prefix, family: read.family };
}

const CIDR_WORDS = new Uint32Array(4);

const cidr = z
  .string()
  .max(50, 'must be at most 50 characters')
  .refine((text) => parseCidr(text) !== undefined, {
    error: 'must be an IPv4 or IPv6 address or CIDR range, such as 203.0.113.0/24 or 2001:db8::/32',
  });

/** Allow and deny lists on the client address; deny wins; a non-empty allow list admits only itself. */
export const ipRules = z.strictObject({
  allow: z.array(cidr).max(200, 'at most 200 ranges').default([]),
  deny: z.array(cidr).max(200, 'at most 200 ranges').default([]),
});
export type IpRules = z.infer<typeof ipRules>;

// ---- timeouts and retries ----

export const routeTimeouts = z.strictObject({
  /** Establishing a connection to a target (a new connection; a kept-alive one is reused at once). */
  connect_ms: z.number().int().min(1).max(60_000).optional(),
  /**
   * From the request having been sent whole (a slow upload is not the origin's time) to the origin's
   * response head.
   */
  response_headers_ms: z.number().int().min(1).max(300_000).optional(),
  /** Longest silence between two chunks of the origin's response body. */
  idle_ms: z.number().int().min(1).max(300_000).optional(),
});
export type RouteTimeouts = z.infer<typeof routeTimeouts>;

/**
 * The most distinct `connect_ms` values the routes sending to one origin (by origin_id or traffic split)
 * may use: a gateway keeps a connection pool per target for each, and no more.
 */
export const MAX_ROUTE_CONNECT_TIMEOUTS_PER_ORIGIN = 4;

export const RETRY_CONDITIONS = ['connect_error', 'reset', '502', '503', '504'] as const;
export type RetryCondition = (typeof RETRY_CONDITIONS)[number];

export const retryPolicy = z
  .strictObject({
    /** Tries in all, the first included: 2 = one retry. */
    attempts: z.number().int().min(2).max(5).default(2),
    on: z
      .array(z.enum(RETRY_CONDITIONS))
      .min(1, 'needs at least one condition')
      .default(['connect_error', 'reset', '502', '503', '504']),
    /**
     * Methods that may be retried: the idempotent ones unless others are listed. Listing POST or PATCH
     * accepts that an origin that acted on a request before its connection was reset acts on it again.
     */
    methods: z
      .array(z.enum(HTTP_METHODS))
      .min(1, 'needs at least one method')
      .default([...IDEMPOTENT_METHODS]),
    /** Exponential backoff with full jitter: a random wait up to min(max_ms, base_ms × 2^retry). */
    backoff: z
      .strictObject({
        base_ms: z.number().int().min(0).max(10_000).default(25),
        max_ms: z.number().int().min(0).max(30_000).default(250),
      })
      .prefault({}),
    /**
     * Envoy-style retry budget per target: the retries caused by a target's failures stay within
     * `percent` of its requests over the last 10 seconds (at least `min_retries` of them).
     */
    budget: z
      .strictObject({
        percent: z.number().min(1).max(100).default(20),
        min_retries: z.number().int().min(0).max(1000).default(3),
      })
      .prefault({}),
  })
  .superRefine((retries, ctx) => {
    if (retries.backoff.max_ms < retries.backoff.base_ms) {
      ctx.addIssue({ code: 'custom', path: ['backoff', 'max_ms'], message: 'must be at least base_ms' });
    }
  });
export type RetryPolicy = z.infer<typeof retryPolicy>;

// ---- traffic split ----

const headerOrCookieFields = {
  header: headerName.optional().meta({
    description:
      "not a header the gateway writes for the origin (x-vantageedge-*, X-Forwarded-*, Forwarded, X-Real-IP, X-Request-Id: 400); one it passes on only from a trusted proxy (True-Client-IP, CF-Connecting-IP, …) is read only on a trusted proxy's request or when the route's request_headers write it",
  }),
  cookie: cookieName.optional(),
};
function oneOfHeaderOrCookie(
  value: { header?: string | undefined; cookie?: string | undefined },
  ctx: z.RefinementCtx,
) {
  if ((value.header === undefined) === (value.cookie === undefined)) {
    ctx.addIssue({ code: 'custom', path: ['header'], message: 'give either header or cookie' });
  }
}
const stickyKey = z.strictObject(headerOrCookieFields).superRefine(oneOfHeaderOrCookie);
const splitOverride = z
  .strictObject({
    ...headerOrCookieFields,
    value: z.string().min(1).max(200),
    origin_id: uuidId(),
  })
  .superRefine(oneOfHeaderOrCookie);

export const trafficSplit = z
  .strictObject({
    origins: z
      .array(z.strictObject({ origin_id: uuidId(), weight: z.number().int().min(0).max(1000) }))
      .min(2, 'needs at least two origins')
      .max(10, 'at most 10 origins'),
    /** Requests with the same header or cookie value go to the same origin. */
    sticky: stickyKey.nullable().default(null),
    /** `x-canary: always` → that origin, whatever the weights; the first that matches wins. */
    overrides: z.array(splitOverride).max(10, 'at most 10 overrides').default([]),
  })
  .superRefine((split, ctx) => {
    const ids = new Set<string>();
    split.origins.forEach((entry, index) => {
      if (ids.has(entry.origin_id)) {
        ctx.addIssue({ code: 'custom', path: ['origins', index, 'origin_id'], message: 'is listed twice' });
      }
      ids.add(entry.origin_id);
    });
    if (split.origins.every((entry) => entry.weight === 0)) {
      ctx.addIssue({ code: 'custom', path: ['origins'], message: 'needs at least one weight above 0' });
    }
    split.overrides.forEach((override, index) => {
      if (!ids.has(override.origin_id)) {
        ctx.addIssue({
          code: 'custom',
          path: ['overrides', index, 'origin_id'],
          message: 'must be one of the split origins',
        });
      }
    });
  });
export type TrafficSplit = z.infer<typeof trafficSplit>;

/**
 * A traffic split as a command takes it: no sticky key or override on a header the gateway writes for
 * the origin (its identity headers, X-Forwarded-*, Forwarded, X-Real-IP, X-Request-Id), in any spelling
 * origins read as it (`x_real_ip`). The split reads the client's request, which may carry any of them
 * with any value, while the origin sees the gateway's: an override on `x-vantageedge-auth-kind: service`
 * would send any client that wrote it to that origin, as a match condition would route it (gateways leave
 * such an override out of a route stored before the rule).
 */
export const trafficSplitInput = trafficSplit.superRefine((split, ctx) => {
  const refuse = (name: string | undefined, path: Array<string | number>) => {
    if (name === undefined) return;
    const unsent = unsentHeaderNameIssue(name);
    if (unsent !== undefined) {
      ctx.addIssue({ code: 'custom', path, message: unsent });
      return;
    }
    const read = asOriginsReadIt(name);
    if (!requestHeaderWrittenByGateway(read)) return;
    ctx.addIssue({ code: 'custom', path, message: clientChosenCopyRefused(read, 'a traffic split reads') });
  };
  refuse(split.sticky?.header, ['sticky', 'header']);
  split.overrides.forEach((override, index) => {
    refuse(override.header, ['overrides', index, 'header']);
    const issue =
      override.header === undefined
        ? unreadCookieValueIssue(override.value)
        : unreadHeaderValueIssue(override.value, 'exact');
    if (issue !== undefined)
      ctx.addIssue({ code: 'custom', path: ['overrides', index, 'value'], message: issue });
  });
});

/**
 * Why a cookie override's value is one no request carries, or undefined: gateways read a cookie from the
 * Cookie header as its other values (unreadHeaderValueIssue), up to the `;` that ends it.
 */
function unreadCookieValueIssue(value: string): string | undefined {
  const issue = unreadHeaderValueIssue(value, 'exact');
  if (issue !== undefined || !value.includes(';')) return issue;
  return "must not contain ';': a cookie's value ends at the first ';' of the Cookie header";
}

/**
 * Whether a request header name, in any spelling origins read as it (`x_real_ip`), is one the gateway
 * writes for the origin: a split key, hash key or match condition on it would read the client's copy.
 * Commands refuse them; gateways never read one stored before that rule.
 */
export function readsClientCopyOfGatewayHeader(name: string): boolean {
  return requestHeaderWrittenByGateway(asOriginsReadIt(name));
}

/**
 * A split override gateways leave out: one on a header the gateway writes for the origin, stored before
 * commands refused it, would read the client's copy.
 */
export function splitOverrideLeftOut(override: { readonly header?: string | undefined }): boolean {
  return override.header !== undefined && readsClientCopyOfGatewayHeader(override.header);
}

// ---- matching ----

const hostName = z
  .string()
  .max(253, 'must be at most 253 characters')
  .toLowerCase()
  .regex(
    /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/,
    'must be a host name such as api.example.com (no port, no wildcard)',
  );

function condition<Name extends z.ZodType<string>>(name: Name) {
  return z
    .strictObject({
      name,
      exact: z.string().max(500).optional(),
      prefix: z.string().min(1).max(500).optional(),
      /** true: the field must be there (any value); false: it must not be. */
      present: z.boolean().optional(),
    })
    .superRefine((value, ctx) => {
      const given = [value.exact, value.prefix, value.present].filter((v) => v !== undefined).length;
      if (given !== 1) {
        ctx.addIssue({
          code: 'custom',
          path: ['exact'],
          message: 'give exactly one of exact, prefix, present',
        });
      }
    });
}

export const headerCondition = condition(headerName);
export const queryCondition = condition(queryParamName);
export type MatchCondition = z.infer<typeof headerCondition>;

/** The schemes a route's `match.scheme` may name. */
export const REQUEST_SCHEMES = ['http', 'https'] as const;

/**
 * Conditions beyond path and method. All must hold. Order of matching: priority, then path
 * specificity, then the number of conditions (more first), then the number of methods (fewer first),
 * then the snapshot order.
 */
export const routeMatch = z.strictObject({
  /** A subset of the tenant's hosts; empty = every host of the tenant. */
  hosts: z.array(hostName).max(20, 'at most 20 hosts').default([]),
  headers: z.array(headerCondition).max(10, 'at most 10 header conditions').default([]).meta({
    description:
      "read from the client's request as the origin gets it: no condition on a header the gateway writes for the origin (x-vantageedge-*, X-Forwarded-*, Forwarded, X-Real-IP, X-Request-Id, any spelling with _ or .: 400; gateways never meet one stored before that rule); one the gateway passes on only from a trusted proxy (True-Client-IP, CF-Connecting-IP, X-Forwarded-Ssl, …) is read only on a trusted proxy's request, and from any other client as not sent. exact and prefix are values a request header carries as gateways read it (its bytes as Latin-1, without the spaces and tabs around it): printable ASCII, inner tabs and U+0080–U+00FF (a character sent as UTF-8 is its bytes: € is U+00E2 U+0082 U+00AC), no leading space or tab (nor trailing, for exact); others are never met: 400",
  }),
  query: z.array(queryCondition).max(10, 'at most 10 query conditions').default([]),
  /** Absent (every scheme) unless given: snapshots of routes without it keep their shape. */
  scheme: z
    .enum(REQUEST_SCHEMES, `must be one of ${REQUEST_SCHEMES.join(', ')}`)
    .optional()
    .meta({
      description:
        "the scheme the client used, as the gateway forwards it in X-Forwarded-Proto: https on the TLS listener, http on the plain one, or a trusted proxy's X-Forwarded-Proto (GATEWAY_TRUSTED_PROXIES; any other client's is not read; the ws and wss Traefik writes on a WebSocket upgrade are read as http and https). http on a redirect to https sends only plain-HTTP requests there (APISIX's redirect.http_to_https): HTTPS ones go on to the next route of the path. Give such a redirect route on /* the highest priority: routes rank by priority before path, and a more specific route would take its path's plain-HTTP requests",
    }),
});
export type RouteMatch = z.infer<typeof routeMatch>;

/**
 * Match conditions as a command takes them: none on the gateway's identity headers, nor on a header the
 * gateway writes for the origin (X-Forwarded-*, Forwarded, X-Real-IP, X-Request-Id), in any spelling a
 * condition reads as it (`x_real_ip`). Routes are matched before authentication, on the client's
 * request, and the gateway replaces those lines only when it forwards: a condition on one would be met
 * by whatever the client sends, and the origin would see another value. Gateways never meet such a
 * condition stored before the rule (match-conditions.ts): its route takes no request.
 */
export const routeMatchInput = routeMatch.superRefine((match, ctx) => {
  match.headers.forEach((condition, index) => {
    for (const kind of ['exact', 'prefix'] as const) {
      const value = condition[kind];
      const issue = value === undefined ? undefined : unreadHeaderValueIssue(value, kind);
      if (issue !== undefined)
        ctx.addIssue({ code: 'custom', path: ['headers', index, kind], message: issue });
    }
    const unsent = unsentHeaderNameIssue(condition.name);
    if (unsent !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['headers', index, 'name'], message: unsent });
      return;
    }
    const read = asOriginsReadIt(condition.name);
    if (!requestHeaderWrittenByGateway(read)) return;
    ctx.addIssue({
      code: 'custom',
      path: ['headers', index, 'name'],
      message: clientChosenCopyRefused(read, 'a route is matched on'),
    });
  });
});

/**
 * Why `reader` may not read the client's copy of `read`, a header the gateway writes for the origin.
 * `reader`: 'a route is matched on', 'a traffic split reads'.
 */
/**
 * Why gateways never meet a stored match condition on `name` (readsClientCopyOfGatewayHeader): explain's
 * reason and the gateways' warning.
 */
export function gatewayHeaderConditionNeverMet(name: string): string {
  return `its condition on ${name} is never met: ${name} is written by the gateway for the origin, and a route is matched on the client's request, which may carry any value (stored before commands refused such conditions)`;
}

function clientChosenCopyRefused(read: string, reader: string): string {
  return read.startsWith(GATEWAY_HEADER_PREFIX)
    ? `${GATEWAY_HEADER_PREFIX}* headers are the gateway's: ${reader} the client's request, which may carry any of them`
    : `${read} is written by the gateway for the origin: ${reader} the client's request, which may carry any value (ip_rules read the client's address)`;
}

// ---- answers without an origin ----

const FIXED_RESPONSE_HEADERS_REFUSED = ['content-length', 'transfer-encoding', 'connection', 'content-type'];
/**
 * The response headers a transform may not touch (RESPONSE_HEADERS_NOT_TRANSFORMED: X-Request-Id)
 * beyond those refused on their own (the framing ones, hop-by-hop): a fixed response follows the same
 * rule in commands, and the gateway drops them from routes stored before it.
 */
function setByGatewayOnEveryAnswer(name: string): boolean {
  return (
    RESPONSE_HEADERS_NOT_TRANSFORMED.includes(name) &&
    !FIXED_RESPONSE_HEADERS_REFUSED.includes(name) &&
    !HOP_BY_HOP_HEADERS.includes(name)
  );
}

const fixedResponseOf = (command: boolean) =>
  z
    .strictObject({
      status: z.number().int().min(200).max(599),
      headers: withDescription(
        boundedRecord(
          headerName
            .refine(
              (name) =>
                !FIXED_RESPONSE_HEADERS_REFUSED.includes(name) && !name.startsWith(GATEWAY_HEADER_PREFIX),
              {
                error: 'is set by the gateway (content_type sets content-type)',
              },
            )
            .refine((name) => name !== 'set-cookie', { error: SET_COOKIE_REFUSED })
            .refine((name) => !command || !setByGatewayOnEveryAnswer(name), {
              error: 'is set by the gateway on every answer and cannot be changed',
            })
            .refine((name) => !command || name !== 'clear-site-data', { error: CLEAR_SITE_DATA_REFUSED })
            .refine((name) => !command || name !== ALT_SVC, { error: ALT_SVC_REFUSED })
            .refine((name) => !command || name !== NEL, { error: NEL_REFUSED })
            .refine((name) => !command || name !== REPORT_TO, { error: REPORT_TO_REFUSED })
            .refine(
              (name) =>
                !command ||
                FIXED_RESPONSE_HEADERS_REFUSED.includes(name) ||
                !HOP_BY_HOP_HEADERS.includes(name),
              {
                error: CONNECTION_HEADER_REFUSED,
              },
            ),
          command ? headerValueTextInput : headerValueText,
          30,
          TOKEN,
          command,
        ),
        command &&
          'at most 30; not the headers the gateway sets on every answer (x-request-id, content-length, content-type: give content_type), not x-vantageedge-*, hop-by-hop headers, set-cookie, clear-site-data, alt-svc or nel',
      ).default({}),
      /** Anything (it is the answer’s content): the CLI escapes what it prints of it. */
      body: z.string().max(65_536, 'must be at most 64 KiB').default(''),
      content_type: (command ? headerValueTextInput : headerValueText)
        .min(1)
        .default('text/plain; charset=utf-8'),
    })
    .superRefine((fixed, ctx) => {
      if (command && fixed.body !== '' && STATUSES_WITHOUT_BODY.includes(fixed.status)) {
        ctx.addIssue({
          code: 'custom',
          path: ['body'],
          message: `must be empty: a ${fixed.status} answer has no body`,
        });
      }
    });
/**
 * RFC 9110 §6.4.1 and §15.3.6: these answers never carry content (the gateway sends none for a route
 * stored with one; node ends an HTTP/2 stream at the head of each, and a body resets it).
 */
export const STATUSES_WITHOUT_BODY: readonly number[] = [204, 205, 304];
export const fixedResponse = fixedResponseOf(false);
/** fixedResponse as a command may give it. */
export const fixedResponseInput = fixedResponseOf(true);
export type FixedResponse = z.infer<typeof fixedResponse>;

const redirectOf = (command: boolean) =>
  z.strictObject({
    status: z.literal([301, 302, 303, 307, 308]).default(302),
    /** `https://new.example.com${path}${query}`: ${path}, ${query} (with its ?) and ${host} of the request. */
    location: withDescription(
      template(
        z
          .string()
          .min(1, 'must not be empty')
          .max(2000, 'must be at most 2000 characters')
          .regex(/^[\x21-\x7e]+$/, 'must be a URL or path without spaces or control characters'),
        LOCATION_VARIABLES,
        command,
      ),
      command &&
        `\${path}, \${query} (with its ?) and \${host} of the request, at most ${MAX_TEMPLATE_VARIABLES} of them; a request that would make the Location longer than 32 KiB is answered 414 uri_too_long; a template that lets the request's \${path} stand where browsers read the host (\`/\${path}\`, \`http:\${path}\`) is refused (400): write \${path} right after a host, or at the start`,
    ).superRefine((location, ctx) => {
      if (command && pathChoosesRedirectHost(location))
        ctx.addIssue({ code: 'custom', message: PATH_CHOOSES_HOST });
    }),
  });

const PATH_CHOOSES_HOST = `lets the request path choose the host browsers go to (a request for /evil.example would be sent to evil.example): write \${path} right after a host, or at the start (it begins with /)`;

/**
 * Whether a redirect's `${path}`, which the client chooses, can stand where a browser reads the
 * Location's host: `/${path}` makes a request for /evil.example a redirect to `//evil.example`, and
 * `http:${path}` one to `http://evil.example` (browsers read `\` as `/` and a scheme without its
 * slashes). Tried as browsers resolve it, from a page of either scheme, with and without a query (an
 * empty ${query} before ${path} is none): two paths, two hosts.
 */
export function pathChoosesRedirectHost(location: string): boolean {
  const parsed = parseTemplate(location, LOCATION_VARIABLES);
  if (!parsed.ok || !parsed.parts.some((part) => 'variable' in part && part.variable === 'path'))
    return false;
  const expanded = (path: string, query: string) =>
    parsed.parts
      .map((part) =>
        'literal' in part ? part.literal : { path, query, host: 'host.example' }[part.variable],
      )
      .join('');
  const hostOf = (text: string, base: string) => {
    try {
      return new URL(text, base).host;
    } catch {
      return undefined;
    }
  };
  return ['http://page.example/a/', 'https://page.example/a/'].some((base) =>
    ['', '?q'].some(
      (query) =>
        hostOf(expanded('/one.example/x', query), base) !== hostOf(expanded('/two.example/x', query), base),
    ),
  );
}
export const redirect = redirectOf(false);
/** redirect as a command may give it. */
export const redirectInput = redirectOf(true);
export type Redirect = z.infer<typeof redirect>;

/** What a route's preserve_host does, as the admin API's documents tell it. */
export const PRESERVE_HOST_DESCRIPTION =
  "true: the origin gets the host the client asked for as its Host (lower case, without a trailing dot, with the client's port), not its target's host[:port]; TLS to an https target still uses the target's name or tls.server_name; health checks keep the target's host";

/** Request bodies and header sections beyond what the gateway's global limits allow are refused anyway. */
export const MAX_ROUTE_BODY_BYTES = 1024 * 1024 * 1024;
export const MAX_ROUTE_HEADER_BYTES = 1024 * 1024;

/** Every route policy off: what a route created before they existed, or without them, has. */
export const NO_ROUTE_POLICIES = {
  match: null,
  cors: null,
  ip_rules: null,
  request_headers: null,
  response_headers: null,
  rewrite_path: null,
  preserve_host: false,
  query: null,
  timeouts: null,
  retries: null,
  max_body_bytes: null,
  max_header_bytes: null,
  traffic_split: null,
  fixed_response: null,
  redirect: null,
} as const;
export const ROUTE_POLICY_FIELDS = Object.keys(NO_ROUTE_POLICIES) as ReadonlyArray<
  keyof typeof NO_ROUTE_POLICIES
>;
