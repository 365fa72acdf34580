import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { targetWithoutCredentials } from '@vantageedge/shared/http/request-target';
import { LOGGED_PATH_MAX, loggedPath } from '@vantageedge/shared/observability/logged-path';
import { ANONYMOUS } from '../auth/identity.js';
import { bodyBytesOf } from '../http/body-bytes.js';
import { recordedMethod } from '../http/request-method.js';
import type { GatewayExchange } from '../pipeline/exchange.js';
import type { ListenerRefusal } from './listener-refusals.js';

/**
 * One access-log line, built by concatenation in a fixed field order: the same keys on every line
 * (null when a value is absent), the shape of the gateway's service log lines (timestamp, level,
 * service, message) plus the request's fields. No intermediate object, no generic serializer
 * (`make bench-micro` compares it with winston and pino). Values a client can influence (method, path,
 * client IP, trace id, origin target, user agent) go through JSON.stringify, DEL and every character
 * past it escaped too; ids and outcomes the gateway itself produced are written as they are. A line is
 * ASCII and at most ACCESS_LINE_MAX bytes.
 */
let clockMs = 0;
let clockText = '';

/** ISO time of `now`, formatted at most once per millisecond. */
function timestampOf(now: number): string {
  if (now !== clockMs) {
    clockMs = now;
    clockText = new Date(now).toISOString();
  }
  return clockText;
}

/** An id or outcome the gateway produced ([A-Za-z0-9._:-], UUIDs, codes): quoted, or null. */
function plain(value: string | undefined): string {
  return value === undefined ? 'null' : `"${value}"`;
}

/**
 * The most bytes of one line (its newline included): PIPE_BUF, what one write to a pipe carries whole,
 * never split nor interleaved with the service log's lines on the same stdout (see BatchedLineWriter).
 */
export const ACCESS_LINE_MAX = 4096;

/** DEL and every character past it: C1 controls a terminal acts on (U+009B is CSI), and any multi-byte one. */
const NOT_ASCII = /[\u007f-\uffff]/g;

function escaped(character: string): string {
  return `\\u${character.charCodeAt(0).toString(16).padStart(4, '0')}`;
}

/**
 * A value from the request: a JSON string of ASCII alone (DEL and past it as \uXXXX: the value parses
 * back as sent, a terminal showing the line acts on none of it, and the line's length is its bytes), or null.
 */
function quoted(value: string | undefined): string {
  return value === undefined ? 'null' : JSON.stringify(value).replace(NOT_ASCII, escaped);
}

const BACKSLASH = 0x5c;
const LETTER_U = 0x75;

/** `json`, a JSON string as `quoted` writes it, in at most `max` characters: cut between escapes, ending in `…`. */
function cutQuoted(json: string, max: number): string {
  if (json.length <= max) return json;
  const ellipsis = '\\u2026"';
  const limit = max - ellipsis.length;
  let end = 1;
  while (end < limit) {
    const step = json.charCodeAt(end) !== BACKSLASH ? 1 : json.charCodeAt(end + 1) === LETTER_U ? 6 : 2;
    if (end + step > limit) break;
    end += step;
  }
  return `${json.slice(0, end)}${ellipsis}`;
}

function milliseconds(value: number | undefined): string {
  return value === undefined ? 'null' : String(Math.round(value * 1000) / 1000);
}

/**
 * The request target without its query or user information (targetWithoutCredentials): the log never
 * holds a credential. (A normalised path, set once the tenant is found and the path accepted, never has one.)
 */
function pathOf(url: string | undefined): string | undefined {
  // One character past what loggedPath keeps, which it then cuts and marks.
  return url === undefined ? undefined : targetWithoutCredentials(url, LOGGED_PATH_MAX + 1);
}

/** The method, bounded (recordedMethod): an HTTP/2 client's `:method` may be as long as the header limit. */
function methodOf(method: string | undefined): string | undefined {
  return method === undefined ? undefined : recordedMethod(method);
}

/**
 * The most of a User-Agent one line carries: like a long path's (loggedPath), a client's header-sized
 * one would fill the replica's shared log buffer; real ones are a few hundred characters at most.
 */
export const LOGGED_USER_AGENT_MAX = 512;

/** The request's User-Agent (the first, if an HTTP/2 client sent several), cut after LOGGED_USER_AGENT_MAX. */
function userAgentOf(headers: IncomingHttpHeaders | undefined): string | undefined {
  const field = headers?.['user-agent'] as string | string[] | undefined;
  const value = Array.isArray(field) ? field[0] : field;
  if (value === undefined || value.length <= LOGGED_USER_AGENT_MAX) return value;
  return `${value.slice(0, LOGGED_USER_AGENT_MAX)}…`;
}

function count(value: number | undefined): string {
  return value === undefined ? 'null' : String(value);
}

/** What a line reads of an exchange. */
type LoggedExchange = Pick<
  GatewayExchange,
  | 'traceId'
  | 'tenant'
  | 'route'
  | 'path'
  | 'upstreamTarget'
  | 'upstreamMs'
  | 'identity'
  | 'rateLimitOutcome'
  | 'cacheOutcome'
  | 'errorCode'
  | 'retries'
  | 'resends'
  | 'responseComplete'
  | 'upstreamCutCode'
  | 'webSocketClose'
  | 'loggedTenantId'
  | 'loggedRouteId'
> & {
  readonly requestId: string | undefined;
  readonly clientIp: string | undefined;
  /** Its body bytes read, when it counts them (see bodyBytesOf). */
  readonly req: Pick<IncomingMessage, 'method' | 'url'> & { readonly headers?: IncomingHttpHeaders };
  /** Its body bytes sent, when it counts them. */
  readonly res: object;
};

/** A request a listener refused, as a line: no request id, tenant or route, no latency. */
export function refusalLogLine(refusal: ListenerRefusal, service: string, now: number = Date.now()): string {
  const refused: LoggedExchange = {
    requestId: undefined,
    traceId: undefined,
    tenant: undefined,
    route: undefined,
    path: '',
    req: {
      method: refusal.method,
      url: refusal.target,
      headers: refusal.userAgent === undefined ? {} : { 'user-agent': refusal.userAgent },
      bodyBytes: refusal.bytesReceived,
    } as LoggedExchange['req'],
    res: { bodyBytes: refusal.bytesSent },
    upstreamTarget: undefined,
    upstreamMs: undefined,
    identity: ANONYMOUS,
    rateLimitOutcome: undefined,
    cacheOutcome: undefined,
    errorCode: refusal.code,
    clientIp: refusal.clientIp,
    retries: 0,
    resends: 0,
    responseComplete: true,
    upstreamCutCode: undefined,
    webSocketClose: undefined,
    loggedTenantId: undefined,
    loggedRouteId: undefined,
  };
  return accessLogLine(refused, service, refusal.status, undefined, now);
}

export function accessLogLine(
  exchange: LoggedExchange,
  service: string,
  status: number,
  latencyMs: number | undefined,
  now: number = Date.now(),
): string {
  const path = quoted(loggedPath(exchange.path || pathOf(exchange.req.url)));
  const userAgent = quoted(userAgentOf(exchange.req.headers));
  const line = lineOf(exchange, service, status, latencyMs, now, path, userAgent);
  if (line.length <= ACCESS_LINE_MAX) return line;
  // Escapes made the client's values long (up to 6 bytes a character): the user agent, then the path, cut to fit.
  const shortAgent = cutQuoted(userAgent, LOGGED_USER_AGENT_MAX);
  const room = ACCESS_LINE_MAX - (line.length - path.length - userAgent.length + shortAgent.length);
  return lineOf(exchange, service, status, latencyMs, now, cutQuoted(path, room), shortAgent);
}

function lineOf(
  exchange: LoggedExchange,
  service: string,
  status: number,
  latencyMs: number | undefined,
  now: number,
  path: string,
  userAgent: string,
): string {
  return (
    `{"timestamp":"${timestampOf(now)}","level":"info","service":${quoted(service)},` +
    `"message":"request","kind":"access","request_id":${plain(exchange.requestId)},` +
    `"trace_id":${quoted(exchange.traceId)},"tenant_id":${plain(exchange.tenant?.id ?? exchange.loggedTenantId)},` +
    `"route_id":${plain(exchange.route?.config.id ?? exchange.loggedRouteId)},"method":${quoted(methodOf(exchange.req.method))},` +
    `"path":${path},"status":${status},` +
    `"latency_ms":${milliseconds(latencyMs)},"upstream_target":${quoted(exchange.upstreamTarget)},` +
    `"upstream_ms":${milliseconds(exchange.upstreamMs)},"auth":"${exchange.identity.kind}",` +
    `"rate_limit":${plain(exchange.rateLimitOutcome)},"cache":${plain(exchange.cacheOutcome)},` +
    `"error_code":${plain(exchange.errorCode ?? exchange.upstreamCutCode)},"client_ip":${quoted(exchange.clientIp)},` +
    `"retries":${exchange.retries},"resends":${exchange.resends},"response_complete":${exchange.responseComplete},` +
    `"bytes_received":${count(bodyBytesOf(exchange.req))},"bytes_sent":${count(bodyBytesOf(exchange.res))},` +
    `"close_code":${count(exchange.webSocketClose?.code)},"closed_by":${plain(exchange.webSocketClose?.by)},` +
    `"user_agent":${userAgent}}\n`
  );
}
