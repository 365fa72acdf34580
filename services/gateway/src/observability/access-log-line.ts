import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { targetWithoutCredentials } from '@vantageedge/shared/http/request-target';
import { loggedPath } from '@vantageedge/shared/observability/logged-path';
import { withTerminalControlsEscaped } from '@vantageedge/shared/observability/terminal-controls';
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
 * client IP, trace id, origin target, user agent) go through JSON.stringify, their terminal controls
 * escaped too; ids and outcomes the gateway itself produced are written as they are.
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

/** A value from the request: escaped (terminal controls too, as \uXXXX: the value parses back as sent), or null. */
function quoted(value: string | undefined): string {
  return value === undefined ? 'null' : withTerminalControlsEscaped(JSON.stringify(value));
}

function milliseconds(value: number | undefined): string {
  return value === undefined ? 'null' : String(Math.round(value * 1000) / 1000);
}

/**
 * The request target without its query or user information (targetWithoutCredentials): the log never
 * holds a credential. (A normalised path, set once the tenant is found and the path accepted, never has one.)
 */
function pathOf(url: string | undefined): string | undefined {
  return url === undefined ? undefined : targetWithoutCredentials(url);
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
  | 'responseComplete'
  | 'upstreamCutCode'
  | 'webSocketClose'
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
    responseComplete: true,
    upstreamCutCode: undefined,
    webSocketClose: undefined,
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
  return (
    `{"timestamp":"${timestampOf(now)}","level":"info","service":${quoted(service)},` +
    `"message":"request","kind":"access","request_id":${plain(exchange.requestId)},` +
    `"trace_id":${quoted(exchange.traceId)},"tenant_id":${plain(exchange.tenant?.id)},` +
    `"route_id":${plain(exchange.route?.config.id)},"method":${quoted(methodOf(exchange.req.method))},` +
    `"path":${quoted(loggedPath(exchange.path || pathOf(exchange.req.url)))},"status":${status},` +
    `"latency_ms":${milliseconds(latencyMs)},"upstream_target":${quoted(exchange.upstreamTarget)},` +
    `"upstream_ms":${milliseconds(exchange.upstreamMs)},"auth":"${exchange.identity.kind}",` +
    `"rate_limit":${plain(exchange.rateLimitOutcome)},"cache":${plain(exchange.cacheOutcome)},` +
    `"error_code":${plain(exchange.errorCode ?? exchange.upstreamCutCode)},"client_ip":${quoted(exchange.clientIp)},` +
    `"retries":${exchange.retries},"response_complete":${exchange.responseComplete},` +
    `"bytes_received":${count(bodyBytesOf(exchange.req))},"bytes_sent":${count(bodyBytesOf(exchange.res))},` +
    `"close_code":${count(exchange.webSocketClose?.code)},"closed_by":${plain(exchange.webSocketClose?.by)},` +
    `"user_agent":${quoted(userAgentOf(exchange.req.headers))}}\n`
  );
}
