import type { IncomingHttpHeaders } from 'node:http';

/**
 * Hop-by-hop fields (RFC 9110 §7.6.1) and those HTTP/2 forbids (RFC 9113 §8.2.2): they describe one
 * connection, never the resource. A proxy drops them both ways, a cache never stores them, a route
 * never sets them (node refuses to send them to an HTTP/2 client; a proxy credential is for the hop it
 * was sent on).
 */
export const HOP_BY_HOP_HEADERS: readonly string[] = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  // For the next client on the response chain only, as Proxy-Authenticate (RFC 9110 §11.7.3).
  'proxy-authentication-info',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  // HTTP/1.1's upgrade to h2c (RFC 7540 §3.2.1).
  'http2-settings',
];

/** The field names a Connection header lists (lower-case; `close`/`keep-alive` are options, not fields). */
export function connectionNamedHeaders(
  value: string | readonly string[] | undefined,
): Set<string> | undefined {
  if (value === undefined) return undefined;
  const text = typeof value === 'string' ? value : value.join(',');
  let named: Set<string> | undefined;
  for (const token of text.split(',')) {
    const name = token.trim().toLowerCase();
    if (name === '' || name === 'close' || name === 'keep-alive') continue;
    named ??= new Set();
    named.add(name);
  }
  return named;
}

const HOP_BY_HOP: ReadonlySet<string> = new Set(HOP_BY_HOP_HEADERS);

/**
 * The request headers as the origin will receive them from the client: without hop-by-hop fields and
 * without the fields the client named in Connection (the proxy drops both). Whatever selects a cached
 * response must be read from this view, or a client could key a response on a header the origin never
 * saw (the gateway's cache, and explain's account of it). Returns `headers` itself when nothing is to be
 * removed (the common case).
 */
export function endToEndRequestHeaders(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const named = connectionNamedHeaders(headers.connection);
  let hopByHop = named !== undefined;
  if (!hopByHop)
    for (const name of HOP_BY_HOP) if (name !== 'connection' && headers[name] !== undefined) hopByHop = true;
  if (!hopByHop) return headers;
  const view: IncomingHttpHeaders = {};
  for (const name in headers) {
    if (HOP_BY_HOP.has(name) || named?.has(name)) continue;
    view[name] = headers[name];
  }
  return view;
}
