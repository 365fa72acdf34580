import { createHash } from 'node:crypto';
import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { HOST_BOUND_HEADERS } from '@vantageedge/shared/domain/route-policies';
import type { ResponseHead } from '../pipeline/stage.js';
import { connectionNamedHeaders, HOP_BY_HOP_HEADERS } from '../proxy/hop-by-hop.js';

/** How the origin's Set-Cookie and Clear-Site-Data reach the client (CookieDomainGuard). */
export interface ResponseScoping {
  cookie(value: string): string;
  /** undefined: the header is dropped. */
  clearSiteData(value: string): string | undefined;
}

/**
 * Whether the origin's answer switched the connection to the WebSocket protocol the client asked for:
 * 101 with `Upgrade: websocket` and `Connection: upgrade`. Anything else (a 101 without Upgrade, or to
 * another protocol) leaves the connection in a state neither side agreed to.
 */
export function switchesToWebSocket(response: IncomingMessage): boolean {
  if (response.statusCode !== 101) return false;
  const upgrade = response.headers.upgrade?.trim().toLowerCase();
  return (
    upgrade === 'websocket' && connectionNamedHeaders(response.headers.connection)?.has('upgrade') === true
  );
}

/**
 * Whether an answer with this status to an HTTP/2 client's extended CONNECT tells it the WebSocket is
 * open: any 2xx does (RFC 8441 §5), where an HTTP/1.1 client takes nothing but a 101 for a switch.
 */
export function opensHttp2WebSocket(status: number | undefined): boolean {
  return status !== undefined && status >= 200 && status < 300;
}

/** RFC 6455 §4.1: a client's key is a random 16-byte value, base64-encoded. */
const WEBSOCKET_KEY = /^[A-Za-z0-9+/]{22}==$/;
const ACCEPT_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** Whether `key` (a client's Sec-WebSocket-Key) is one an origin's answer can be checked against. */
export function isWebSocketKey(key: string | undefined): key is string {
  return key !== undefined && WEBSOCKET_KEY.test(key);
}

/**
 * Whether the origin's Sec-WebSocket-Accept is the one for the client's key (RFC 6455 §4.2.2): only a
 * WebSocket server that read this very request can compute it, so a 101 from anything else (a server
 * that does not speak WebSocket, a cache replaying another connection's answer) is not relayed.
 */
export function acceptsKey(response: IncomingMessage, key: string): boolean {
  const expected = createHash('sha1')
    .update(key + ACCEPT_GUID)
    .digest('base64');
  return response.headers['sec-websocket-accept']?.trim() === expected;
}

/**
 * The fields of the switch the client gets: the origin's handshake fields (those of the origin's
 * connection dropped: hop-by-hop, those its Connection names, a Content-Length a 1xx never has; Set-Cookie
 * and Clear-Site-Data scoped to the tenant; Alt-Svc, NEL and Report-To dropped, as on every response),
 * then passed through `routeHooks` (the route's response header hooks: what its `response_headers`
 * remove, an origin's internal host or Server, is not on the switch either), its Sec-WebSocket-* fields
 * always the origin's own (the handshake is the origin's). Names in lower case.
 */
export function switchedFields(
  upstream: IncomingMessage,
  scoping: ResponseScoping,
  routeHooks: (head: ResponseHead) => void,
): Array<[name: string, value: string]> {
  // No prototype: the origin names the fields, and a plain object already has some (`constructor`).
  const headers: OutgoingHttpHeaders = Object.create(null);
  const handshake: Array<[string, string]> = [];
  for (const [name, value] of relayedHandshakeFields(upstream, scoping)) {
    const lower = name.toLowerCase();
    if (lower.startsWith(HANDSHAKE_FIELD_PREFIX)) {
      handshake.push([lower, value]);
      continue;
    }
    const values = headers[lower];
    headers[lower] =
      values === undefined ? value : [...(Array.isArray(values) ? values : [String(values)]), value];
  }
  const head: ResponseHead = { statusCode: 101, headers, checkedHeaders: undefined };
  routeHooks(head);
  const fields: Array<[string, string]> = [...handshake];
  for (const [name, value] of Object.entries(head.headers)) {
    if (value === undefined || name.startsWith(HANDSHAKE_FIELD_PREFIX)) continue;
    for (const each of Array.isArray(value) ? value : [String(value)]) fields.push([name, each]);
  }
  for (const checked of head.checkedHeaders ?? []) fields.push([checked.key, checked.value]);
  return fields;
}

const HANDSHAKE_FIELD_PREFIX = 'sec-websocket-';

/** `HTTP/1.1 101 …` with the switch's fields (switchedFields), as raw bytes for the client socket. */
export function switchingProtocolsHead(fields: Array<[string, string]>, requestId: string): string {
  let head = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n';
  for (const [name, value] of fields) head += `${name}: ${value}\r\n`;
  return `${head}x-request-id: ${requestId}\r\n\r\n`;
}

/**
 * The header fields of the 200 that opens a WebSocket on an HTTP/2 stream (RFC 8441 §5): the switch's
 * fields as `switchingProtocolsHead` writes them, but no Sec-WebSocket-Accept (the key was the
 * gateway's own, an HTTP/2 client sent none).
 */
export function switchedStreamHeaders(
  fields: Array<[string, string]>,
  requestId: string,
): Record<string, string[]> {
  const headers = new Map<string, string[]>();
  for (const [name, value] of fields) {
    if (name === 'sec-websocket-accept') continue;
    const values = headers.get(name);
    if (values === undefined) headers.set(name, [value]);
    else values.push(value);
  }
  headers.set('x-request-id', [requestId]);
  return Object.fromEntries(headers);
}

/** The origin's handshake fields the client gets, in its order and spelling, scoped to the tenant. */
function relayedHandshakeFields(
  upstream: IncomingMessage,
  scoping: ResponseScoping,
): Array<[name: string, value: string]> {
  const fields: Array<[string, string]> = [];
  const connectionNamed = connectionNamedHeaders(upstream.headers.connection);
  const raw = upstream.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    if (!relayedOnSwitch(name) || connectionNamed?.has(name)) continue;
    const given = raw[i + 1] as string;
    const value =
      name === 'set-cookie'
        ? scoping.cookie(given)
        : name === 'clear-site-data'
          ? scoping.clearSiteData(given)
          : given;
    if (value !== undefined) fields.push([raw[i] as string, value]);
  }
  return fields;
}

/** `__proto__` as the proxy drops it from every response (forwarded-headers.ts: NEVER_RELAYED). */
function relayedOnSwitch(name: string): boolean {
  return (
    !HOP_BY_HOP_HEADERS.has(name) &&
    !HOST_BOUND_HEADERS.includes(name) &&
    name !== 'content-length' &&
    name !== 'x-request-id' &&
    name !== '__proto__'
  );
}
