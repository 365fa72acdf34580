import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { REQUEST_DROPPED } from '@vantageedge/shared/domain/dropped-request-headers';
import {
  HOST_BOUND_HEADERS,
  SCHEME_HEADERS,
  TRUSTED_PROXY_HEADERS,
} from '@vantageedge/shared/domain/route-policies';
import { asOriginsReadIt, spellingsReadAs } from '@vantageedge/shared/http/cgi-spellings';
import { headerList } from '@vantageedge/shared/http/header-values';
import { withoutTrailingSlashes } from '@vantageedge/shared/http/trailing-slashes';
import type { Identity } from '../auth/identity.js';
import { withPlatformEntry } from '../http/cdn-loop.js';
import { requestAuthority } from '../http/request-authority.js';
import { type ViaEntries, withViaEntry } from '../http/via.js';
import { HOP_BY_HOP_HEADERS } from './hop-by-hop.js';

// Header rewriting between client and origin. Hop-by-hop headers (RFC 9110 §7.6.1) and the ones the
// Connection header names are dropped both ways; identity headers are the gateway's alone.

export const IDENTITY_HEADER_PREFIX = 'x-vantageedge-';

/**
 * A request header whose value at the origin is the gateway's, not the client's: one it writes
 * (X-Forwarded-*, Forwarded, X-Real-IP, X-Request-Id, the identity headers) or drops or keeps only from
 * a trusted proxy (REQUEST_DROPPED). A response varying on one must not be cached under the client's
 * value (the response cache refuses it: vary_gateway_header). Host is not one: the Host an origin gets
 * is its target's, the same for every client, or with the route's preserve_host a reading of the
 * client's Host, which the cache key carries as spelled (originFacingHost).
 * Hop-by-hop headers never reach an origin and never count in a Vary (responseVary).
 * In any spelling CGI-style origins read as one (`X_Real_IP`, `X.Real.IP`): the client's lines so
 * spelled never reach the origin (upstreamRequestHeaders), which reads the gateway's line by that name.
 */
export function originSeesGatewayValue(name: string): boolean {
  const read = asOriginsReadIt(name);
  return (REQUEST_DROPPED.has(read) && read !== 'host') || read.startsWith(IDENTITY_HEADER_PREFIX);
}

/** Whether the client's connection to the gateway is TLS. */
export function connectionProto(req: IncomingMessage): 'http' | 'https' {
  return 'encrypted' in req.socket && req.socket.encrypted ? 'https' : 'http';
}

/**
 * The client's scheme as the gateway determined it: the X-Forwarded-Proto of a trusted proxy, else
 * whether the connection to the gateway is TLS. What the origin gets as X-Forwarded-Proto and what the
 * response cache keys on.
 */
export function clientProto(
  headers: IncomingHttpHeaders,
  socketProto: 'http' | 'https',
  peerTrusted: boolean,
): string {
  return (peerTrusted && firstValue(headers['x-forwarded-proto'])) || socketProto;
}

/**
 * The host an origin is told the client asked for, exactly as it gets it: X-Forwarded-Host (a trusted
 * proxy's, else the client's Host or :authority as spelled: case, port and trailing dot included), and
 * Forwarded's `host=` (always the client's Host) when that differs. An origin may reflect either into
 * links and redirects, so the response cache keys on this, not on the normalised host name: a port or
 * spelling one client chose must never reach another client's answer.
 */
export function originFacingHost(headers: IncomingHttpHeaders, peerTrusted: boolean): string {
  const authority = requestAuthority(headers) ?? '';
  const forwardedHost = forwardedHostHeader(headers, peerTrusted, authority);
  // A header value holds no line break: the two cannot be shifted into one another.
  return forwardedHost === authority ? authority : `${forwardedHost}\n${authority}`;
}

function forwardedHostHeader(headers: IncomingHttpHeaders, peerTrusted: boolean, authority: string): string {
  return (peerTrusted && firstValue(headers['x-forwarded-host'])) || authority;
}

/**
 * What a trusted proxy tells the origin beyond X-Forwarded-Proto and the host: its X-Forwarded-Port and
 * X-Forwarded-Prefix, the other scheme headers it passed on (SCHEME_HEADERS), and its Forwarded elements
 * (trustedForwardedElements), as the origin gets them; '' when it tells none (the origin then gets the
 * gateway's port, which follows from the scheme, and the route's stripped prefix, which follows from
 * the route). A proxy may pass a client's own values on unchanged, and origins build links and
 * redirects from them or take the scheme from them, so the response cache keys on this.
 */
export function originFacingForwarding(headers: IncomingHttpHeaders, peerTrusted: boolean): string {
  if (!peerTrusted) return '';
  const port = trustedForwardedPort(headers, peerTrusted);
  const prefix = trustedForwardedPrefix(headers, peerTrusted);
  const schemes = trustedSchemeHeaders(headers);
  const elements = trustedForwardedElements(headers);
  if (port === undefined && prefix === undefined && schemes === '' && elements === undefined) return '';
  // A header value holds no line break: the parts cannot be shifted into one another.
  const forwarding = `${port ?? ''}\n${prefix ?? ''}${schemes}`;
  return elements === undefined ? forwarding : `${forwarding}\nforwarded\n${elements}`;
}

/**
 * A `for=` or `by=` pair whose value is a plain address or identifier (`192.0.2.7`, `"[2001:db8::1]:80"`,
 * `_edge1`, `unknown`): nothing in it reads as another parameter, however loosely an origin parses.
 */
const ADDRESS_PAIR = /(^|[,;])\s*(?:for|by)\s*=\s*(?:"[\w.:[\]-]*"|[\w.:[\]-]*)\s*(?=[,;]|$)/gi;

/**
 * The Forwarded (RFC 7239) a trusted proxy sent, which the origin gets before the gateway's own element,
 * without its plain `for=` and `by=` pairs; undefined when it sent none. Spring, Ktor and others take
 * the host and scheme of their links from its first element (ahead of X-Forwarded-*), and a proxy may
 * pass a client's `Forwarded: host=evil.example` on unchanged. The client's address in it is left out:
 * keyed, every client behind a CDN would have entries of its own. Anything else is kept as sent.
 */
function trustedForwardedElements(headers: IncomingHttpHeaders): string | undefined {
  const prior = headerList(headers.forwarded);
  return prior === undefined ? undefined : prior.replace(ADDRESS_PAIR, '$1');
}

/** The trusted proxy's scheme headers (SCHEME_HEADERS), each as `\n<name>\n<value>`; '' when none. */
function trustedSchemeHeaders(headers: IncomingHttpHeaders): string {
  let schemes = '';
  for (const name of SCHEME_HEADERS) {
    const value = headerList(headers[name]);
    if (value !== undefined) schemes += `\n${name}\n${value}`;
  }
  return schemes;
}

function trustedForwardedPort(headers: IncomingHttpHeaders, peerTrusted: boolean): string | undefined {
  return peerTrusted ? firstValue(headers['x-forwarded-port']) : undefined;
}

/** A trusted proxy's X-Forwarded-Prefix without its trailing slashes (the route's prefix follows it). */
function trustedForwardedPrefix(headers: IncomingHttpHeaders, peerTrusted: boolean): string | undefined {
  const prefix = peerTrusted ? firstValue(headers['x-forwarded-prefix']) : undefined;
  return prefix === undefined ? undefined : withoutTrailingSlashes(prefix);
}

export interface ForwardingFacts {
  /** The origin's Host: its target's, or the client's with preserve_host (origin-request.ts). */
  readonly upstreamHost: string;
  /** The client as the gateway determined it (see ClientAddressResolver): X-Real-IP. */
  readonly clientIp: string;
  /** The address that connected: appended to X-Forwarded-For and Forwarded. */
  readonly peerIp: string;
  /** The peer is a trusted proxy: its forwarding headers are kept and appended to. */
  readonly peerTrusted: boolean;
  /** The client's protocol as the gateway saw it. */
  readonly proto: 'http' | 'https';
  /** The gateway's port the client connected to. */
  readonly localPort: number | undefined;
  /** The route's strip_prefix when it was removed from this request's path (X-Forwarded-Prefix). */
  readonly strippedPrefix: string | null;
  readonly requestId: string;
  readonly tenantId: string;
  readonly routeId: string;
  readonly identity: Identity;
  /**
   * Headers the route's request transform wrote: forwarded as they are, also the ones dropped when a
   * client sends them (the route's value is the tenant's). Forwarding and identity headers stay the
   * gateway's, written after them.
   */
  readonly routeHeaders?: readonly string[] | undefined;
  /** The client's HTTP version (node's: `1.0`, `1.1`, `2.0`) and the gateway's Via entries; none when off. */
  readonly httpVersion?: string | undefined;
  readonly via?: ViaEntries | undefined;
}

/**
 * Whether the origin gets the request's line of `name`, a header the gateway passes on only from a
 * trusted proxy (keptOnlyFromTrustedProxy): the peer is one, or the route's request transform wrote it
 * (`routeHeaders`), whose value reaches the origin from every client.
 */
export function originGetsTrustedProxyHeader(
  name: string,
  peerTrusted: boolean | undefined,
  routeHeaders: readonly string[] | undefined,
): boolean {
  return peerTrusted === true || routeHeaders?.includes(name) === true;
}

function firstValue(value: string | string[] | undefined): string | undefined {
  const first = Array.isArray(value) ? value[0] : value;
  return first === '' ? undefined : first;
}

/** What nearly every Connection header says, which names no other header: answered without parsing. */
const PLAIN_CONNECTION = new Set(['keep-alive', 'close', 'Keep-Alive', 'Close', 'upgrade', 'Upgrade']);

function connectionTokens(value: string | string[] | undefined): Set<string> | undefined {
  if (value === undefined || (typeof value === 'string' && PLAIN_CONNECTION.has(value))) return undefined;
  const text = Array.isArray(value) ? value.join(',') : value;
  let tokens: Set<string> | undefined;
  for (const token of text.split(',')) {
    const name = token.trim().toLowerCase();
    if (name === '' || name === 'close' || name === 'keep-alive') continue;
    tokens ??= new Set();
    tokens.add(name);
  }
  return tokens;
}

/**
 * Whether the client's Authorization reaches the origin. Not when it carried an API key (a tenant's
 * key is the gateway's business) nor a Clerk session token: that is the user's credential at every
 * tenant that admits them and at the admin API, so an origin holding it could act as the user there.
 * The identity headers tell the origin who the user is.
 */
function originMayReadAuthorization(identity: Identity): boolean {
  return identity.kind !== 'api_key' && identity.issuer !== 'clerk';
}

export function upstreamRequestHeaders(
  headers: IncomingHttpHeaders,
  facts: ForwardingFacts,
): OutgoingHttpHeaders {
  const named = connectionTokens(headers.connection);
  const out: OutgoingHttpHeaders = {};
  const keepAuthorization = originMayReadAuthorization(facts.identity);
  for (const name in headers) {
    // HTTP/2 pseudo-headers (:method, :path, :authority, :scheme) are not headers of the origin request.
    if (name.charCodeAt(0) === 58) continue;
    // A client's `_` or `.` spelling of a header the gateway writes or drops reaches CGI-style origins as it.
    if (DROPPED_SPELLINGS.has(name) || named?.has(name) || readsAsIdentityHeader(name)) continue;
    if (name === 'authorization' && !keepAuthorization) continue;
    out[name] = headers[name];
  }
  out['host'] = facts.upstreamHost;
  const trusted = facts.peerTrusted;
  if (trusted) {
    for (const name of TRUSTED_PROXY_HEADERS) if (headers[name] !== undefined) out[name] = headers[name];
  }
  if (facts.routeHeaders !== undefined) {
    for (const name of facts.routeHeaders) if (headers[name] !== undefined) out[name] = headers[name];
  }
  const peerFor = facts.peerIp.includes(':') ? `"[${facts.peerIp}]"` : facts.peerIp;
  const originalHost = requestAuthority(headers) ?? '';
  const forwarded = `for=${peerFor};host="${originalHost.replace(/["\\]/g, '')}";proto=${facts.proto}`;
  const priorXff = trusted ? headerList(headers['x-forwarded-for']) : undefined;
  const priorForwarded = trusted ? headerList(headers.forwarded) : undefined;
  out['x-forwarded-for'] = priorXff ? `${priorXff}, ${facts.peerIp}` : facts.peerIp;
  out['forwarded'] = priorForwarded ? `${priorForwarded}, ${forwarded}` : forwarded;
  out['x-forwarded-proto'] = clientProto(headers, facts.proto, trusted);
  out['x-forwarded-host'] = forwardedHostHeader(headers, trusted, originalHost);
  const port = trustedForwardedPort(headers, trusted) || facts.localPort;
  if (port !== undefined) out['x-forwarded-port'] = String(port);
  const prefix = (trustedForwardedPrefix(headers, trusted) ?? '') + (facts.strippedPrefix ?? '');
  if (prefix !== '') out['x-forwarded-prefix'] = prefix;
  out['x-real-ip'] = facts.clientIp;
  out['x-request-id'] = facts.requestId;
  out['cdn-loop'] = withPlatformEntry(headers['cdn-loop']);
  // After the client's entries or the route's line: those of the proxies in front come first.
  if (facts.via !== undefined) out['via'] = withViaEntry(out['via'], facts.httpVersion ?? '1.1', facts.via);

  const identity = facts.identity;
  out['x-vantageedge-tenant-id'] = facts.tenantId;
  out['x-vantageedge-route-id'] = facts.routeId;
  out['x-vantageedge-auth-kind'] = identity.kind;
  // A user id is unique only with its issuer: the tenant's OIDC provider may issue a Clerk user's id.
  if (identity.issuer !== undefined) out['x-vantageedge-auth-issuer'] = identity.issuer;
  if (identity.userId !== undefined) out['x-vantageedge-user-id'] = identity.userId;
  if (identity.orgId !== undefined) out['x-vantageedge-org-id'] = identity.orgId;
  if (identity.apiKeyId !== undefined) out['x-vantageedge-api-key-id'] = identity.apiKeyId;
  if (identity.serviceId !== undefined) out['x-vantageedge-service-id'] = identity.serviceId;
  if (identity.scopes.length > 0) out['x-vantageedge-scopes'] = identity.scopes.join(' ');
  return out;
}

/**
 * REQUEST_DROPPED in every spelling CGI-style origins read as one of its names (spellingsReadAs:
 * `X_Real_IP`, PHP's `X.Real.IP`), and the other spellings of Content-Length: it is no field to the
 * gateway, which frames the body itself, as `Content_Length`, but Unicorn (and Puma before 6.4.3) frame
 * the request by it, and the body, or the next request, would be read otherwise. Looked up as each name
 * comes: no name is read (asOriginsReadIt) on every request.
 */
const DROPPED_SPELLINGS: ReadonlySet<string> = new Set([
  ...[...REQUEST_DROPPED].flatMap((name) => spellingsReadAs(asOriginsReadIt(name))),
  ...spellingsReadAs('content-length').filter((spelling) => spelling !== 'content-length'),
]);

const IDENTITY_PREFIX_SPELLINGS: ReadonlySet<string> = new Set(spellingsReadAs(IDENTITY_HEADER_PREFIX));
const IDENTITY_PREFIX_START = IDENTITY_HEADER_PREFIX.charCodeAt(0);

/** Whether CGI-style origins read a name as one of the gateway's identity headers (x-vantageedge-*). */
function readsAsIdentityHeader(name: string): boolean {
  return (
    name.charCodeAt(0) === IDENTITY_PREFIX_START &&
    name.length >= IDENTITY_HEADER_PREFIX.length &&
    IDENTITY_PREFIX_SPELLINGS.has(name.slice(0, IDENTITY_HEADER_PREFIX.length))
  );
}

const NONE: readonly string[] = [];

/**
 * An origin's response headers no client gets: hop-by-hop ones; Alt-Svc, NEL, Report-To (browsers keep them
 * for the host, after it went to another tenant: route-policies.ts); `__proto__` (undici keeps it as an own property, and assigned to the
 * copy it would make its values the copy's prototype; node's server drops the same name from requests).
 */
const NEVER_RELAYED: ReadonlySet<string> = new Set([
  ...HOP_BY_HOP_HEADERS,
  ...HOST_BOUND_HEADERS,
  '__proto__',
]);

/**
 * The origin's response headers (names in lower case, as undici and node give them) minus
 * NEVER_RELAYED, and minus those the gateway has already set on its response (`alreadySet`, the
 * response's `getHeaderNames()`: RateLimit*, X-Cache, CORS, … win over the origin's), except Vary, which the
 * caller merges. Skipped here rather than deleted afterwards: `delete` costs more than the copy. The
 * gateway sets a handful of names at most, so a scan of them per origin header is cheaper than asking
 * the response (which lower-cases and looks up the name twice).
 */
export function downstreamResponseHeaders(
  headers: Record<string, string | string[] | undefined>,
  alreadySet: readonly string[] = NONE,
): OutgoingHttpHeaders {
  const named = connectionTokens(headers['connection']);
  const out: OutgoingHttpHeaders = {};
  const skip = alreadySet.length === 0 ? undefined : alreadySet;
  for (const name in headers) {
    if (NEVER_RELAYED.has(name) || named?.has(name)) continue;
    if (skip !== undefined && name !== 'vary' && skip.includes(name)) continue;
    const value = headers[name];
    if (value !== undefined) out[name] = value;
  }
  return out;
}
