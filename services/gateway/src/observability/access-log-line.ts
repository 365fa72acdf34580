import type { IncomingMessage } from 'node:http';
import { targetWithoutCredentials } from '@vantageedge/shared/http/request-target';
import { loggedPath } from '@vantageedge/shared/observability/logged-path';
import { ANONYMOUS } from '../auth/identity.js';
import { recordedMethod } from '../http/request-method.js';
import type { GatewayExchange } from '../pipeline/exchange.js';
import type { ListenerRefusal } from './listener-refusals.js';

/**
 * One access-log line, built by concatenation in a fixed field order: the same keys on every line
 * (null when a value is absent), the shape of the gateway's service log lines (timestamp, level,
 * service, message) plus the request's fields. No intermediate object, no generic serializer
 * (`make bench-micro` compares it with winston and pino). Values a client can influence (method, path,
 * client IP, trace id, origin target) go through JSON.stringify; ids and outcomes the gateway itself produced are
 * written as they are.
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

/** A value from the request: escaped, or null. */
function quoted(value: string | undefined): string {
  return value === undefined ? 'null' : JSON.stringify(value);
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
> & {
  readonly requestId: string | undefined;
  readonly clientIp: string | undefined;
  readonly req: Pick<IncomingMessage, 'method' | 'url'>;
};

/** A request a listener refused, as a line: no request id, tenant or route, no latency. */
export function refusalLogLine(refusal: ListenerRefusal, service: string, now: number = Date.now()): string {
  const refused: LoggedExchange = {
    requestId: undefined,
    traceId: undefined,
    tenant: undefined,
    route: undefined,
    path: '',
    req: { method: refusal.method, url: refusal.target } as Pick<IncomingMessage, 'method' | 'url'>,
    upstreamTarget: undefined,
    upstreamMs: undefined,
    identity: ANONYMOUS,
    rateLimitOutcome: undefined,
    cacheOutcome: undefined,
    errorCode: refusal.code,
    clientIp: refusal.clientIp,
    retries: 0,
    responseComplete: true,
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
    `"error_code":${plain(exchange.errorCode)},"client_ip":${quoted(exchange.clientIp)},` +
    `"retries":${exchange.retries},"response_complete":${exchange.responseComplete}}\n`
  );
}
