import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { Identity } from '../auth/identity.js';
import { requestAuthority } from '../http/request-authority.js';

/**
 * Header rewriting between client and origin. Hop-by-hop headers (RFC 9110 §7.6.1) and the ones the
 * Connection header names are dropped both ways; identity headers are the gateway's alone.
 */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** Request headers the gateway replaces or must not forward. */
const REQUEST_DROPPED = new Set([
  ...HOP_BY_HOP,
  'host',
  'expect', // node answered 100-continue already; undici refuses to send it
  'x-api-key', // a tenant's key is the gateway's business, never the origin's
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'forwarded',
  'x-request-id',
]);

export const IDENTITY_HEADER_PREFIX = 'x-vantageedge-';

export interface ForwardingFacts {
  readonly upstreamHost: string;
  readonly clientIp: string;
  /** The client's protocol as the gateway saw it. */
  readonly proto: 'http' | 'https';
  readonly requestId: string;
  readonly tenantId: string;
  readonly routeId: string;
  readonly identity: Identity;
  /** Keep the client's X-Forwarded-For / Forwarded and append to them (only behind a trusted proxy). */
  readonly trustProxy: boolean;
}

function connectionTokens(value: string | string[] | undefined): Set<string> | undefined {
  if (value === undefined) return undefined;
  const text = Array.isArray(value) ? value.join(',') : value;
  const tokens = new Set<string>();
  for (const token of text.split(',')) {
    const name = token.trim().toLowerCase();
    if (name !== '' && name !== 'close' && name !== 'keep-alive') tokens.add(name);
  }
  return tokens.size === 0 ? undefined : tokens;
}

export function upstreamRequestHeaders(
  headers: IncomingHttpHeaders,
  facts: ForwardingFacts,
): OutgoingHttpHeaders {
  const named = connectionTokens(headers.connection);
  const out: OutgoingHttpHeaders = {};
  const keepAuthorization = facts.identity.kind !== 'api_key';
  for (const name in headers) {
    // HTTP/2 pseudo-headers (:method, :path, :authority, :scheme) are not headers of the origin request.
    if (name.charCodeAt(0) === 58) continue;
    if (REQUEST_DROPPED.has(name) || named?.has(name) || name.startsWith(IDENTITY_HEADER_PREFIX)) continue;
    if (name === 'authorization' && !keepAuthorization) continue;
    out[name] = headers[name];
  }
  out['host'] = facts.upstreamHost;
  const clientFor = facts.clientIp.includes(':') ? `"[${facts.clientIp}]"` : facts.clientIp;
  const originalHost = requestAuthority(headers) ?? '';
  const forwarded = `for=${clientFor};host="${originalHost.replace(/["\\]/g, '')}";proto=${facts.proto}`;
  const priorXff = facts.trustProxy ? headers['x-forwarded-for'] : undefined;
  const priorForwarded = facts.trustProxy ? headers.forwarded : undefined;
  out['x-forwarded-for'] = priorXff ? `${priorXff}, ${facts.clientIp}` : facts.clientIp;
  out['forwarded'] = priorForwarded ? `${priorForwarded}, ${forwarded}` : forwarded;
  out['x-forwarded-proto'] = facts.proto;
  out['x-forwarded-host'] = originalHost;
  out['x-request-id'] = facts.requestId;

  const identity = facts.identity;
  out['x-vantageedge-tenant-id'] = facts.tenantId;
  out['x-vantageedge-route-id'] = facts.routeId;
  out['x-vantageedge-auth-kind'] = identity.kind;
  if (identity.userId !== undefined) out['x-vantageedge-user-id'] = identity.userId;
  if (identity.orgId !== undefined) out['x-vantageedge-org-id'] = identity.orgId;
  if (identity.apiKeyId !== undefined) out['x-vantageedge-api-key-id'] = identity.apiKeyId;
  if (identity.serviceId !== undefined) out['x-vantageedge-service-id'] = identity.serviceId;
  if (identity.scopes.length > 0) out['x-vantageedge-scopes'] = identity.scopes.join(' ');
  return out;
}

/** The origin's response headers minus hop-by-hop ones. */
export function downstreamResponseHeaders(
  headers: Record<string, string | string[] | undefined>,
): OutgoingHttpHeaders {
  const named = connectionTokens(headers['connection']);
  const out: OutgoingHttpHeaders = {};
  for (const name in headers) {
    if (HOP_BY_HOP.has(name) || named?.has(name)) continue;
    const value = headers[name];
    if (value !== undefined) out[name] = value;
  }
  return out;
}
