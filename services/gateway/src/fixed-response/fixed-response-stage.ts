import type { ServerResponse } from 'node:http';
import {
  type FixedResponse,
  HOST_BOUND_HEADERS,
  type LocationVariable,
  RESPONSE_HEADERS_NOT_TRANSFORMED,
  type Redirect,
  type RouteMatch,
  STATUSES_WITHOUT_BODY,
} from '@vantageedge/shared/domain/route-policies';
import {
  compileRedirectLocation,
  REDIRECT_LOCATION_TOO_LONG,
} from '@vantageedge/shared/gateway-policies/redirect-location';
import { HOP_BY_HOP_HEADERS } from '@vantageedge/shared/http/hop-by-hop-headers';
import { requestHost } from '@vantageedge/shared/routing/match-conditions';
import { CheckedHeader, writeLowerCaseHead } from '../http/gateway-server-response.js';
import { mergedVary } from '../http/vary-fields.js';
import { failExchange } from '../pipeline/errors.js';
import type { GatewayExchange } from '../pipeline/exchange.js';
import { ROUTE_ONLY, type RoutePolicy, type RouteStage } from '../pipeline/stage.js';

/**
 * Routes that answer themselves and never call an origin: `fixed_response` (status, headers, body —
 * e.g. maintenance mode: 503 with Retry-After) and `redirect` (status, location template). After IP
 * rules, CORS and authentication (the route's protection still applies), before rate limiting and the
 * response cache (a cached answer from before maintenance is never served).
 */
export function createFixedResponsePolicy(): RoutePolicy {
  return {
    name: 'fixed_response',
    readsOrigins: false,
    compiledFrom: ROUTE_ONLY,
    compileRoute({ route }) {
      const varyOn = conditionHeaders(route.match ?? null);
      if (route.fixed_response) return fixedStage(route.fixed_response, varyOn);
      if (route.redirect) return redirectStage(route.redirect, varyOn);
      return null;
    },
  };
}

/** The error code recorded for a `fixed_response` of 400 or more. */
export const FIXED_RESPONSE_CODE = 'fixed_response';

/**
 * The request headers the route's match conditions read: the answer depends on them as much as on the
 * URL. A 301/308 (or a 404, 410, …) is cacheable without any Cache-Control, and a browser's or a CDN's
 * cache keeping it for the URL alone would hand it to clients that send another value (RFC 9110
 * §12.5.5).
 */
function conditionHeaders(match: RouteMatch | null): string | undefined {
  return match === null ? undefined : mergedVary(match.headers.map((condition) => condition.name).join(','));
}

/**
 * The answer's head. Its Vary would replace the one of the gateway's own stages (CORS: Origin), which a
 * shared cache needs to keep one site's answer from another: both, each field once.
 */
function writeAnswerHead(
  res: ServerResponse,
  status: number,
  headers: Record<string, string | number>,
  checked?: readonly CheckedHeader[],
): void {
  const own = headers['vary'];
  const vary = res.hasHeader('vary') ? mergedVary(own, res.getHeader('vary')) : undefined;
  writeLowerCaseHead(res, status, vary === undefined ? headers : { ...headers, vary }, checked);
}

/**
 * The answer's fixed headers checked once, as prepared head lines, and those that stay headers (Vary,
 * merged per request; Content-Length and others node reads as it writes the head): a route may set 30
 * values of 1,000 characters, which node would check again on every answer.
 */
function preparedHeaders(headers: Record<string, string | number>): {
  readonly checked: readonly CheckedHeader[];
  readonly rest: Record<string, string | number>;
} {
  const checked: CheckedHeader[] = [];
  const rest: Record<string, string | number> = {};
  for (const [name, value] of Object.entries(headers)) {
    const header = name === 'vary' ? null : checkedOrNull(name, String(value));
    if (header === null) rest[name] = value;
    else checked.push(header);
  }
  return { checked, rest };
}

function checkedOrNull(name: string, value: string): CheckedHeader | null {
  try {
    return new CheckedHeader(name, value);
  } catch {
    return null;
  }
}

function fixedStage(fixed: FixedResponse, varyOn: string | undefined): RouteStage {
  // A 204, 205 or 304 has no content (HTTP/2 clients reset a stream that announces some): commands
  // refuse a body for them, and a route stored before answers without it.
  const bodiless = STATUSES_WITHOUT_BODY.includes(fixed.status);
  const body = Buffer.from(bodiless ? '' : fixed.body, 'utf8');
  const headers: Record<string, string | number> = {};
  for (const [name, value] of Object.entries(fixed.headers)) headers[name.toLowerCase()] = value;
  // Refused by commands since they were found to clear every tenant's cookies (Clear-Site-Data), to
  // outlive the tenant's hold on the host (Alt-Svc, NEL, Report-To), to make node throw for HTTP/2 clients
  // (connection headers) or to replace the request id the gateway gave the answer (X-Request-Id); a
  // route stored before keeps the others.
  delete headers['clear-site-data'];
  for (const name of HOST_BOUND_HEADERS) delete headers[name];
  for (const name of HOP_BY_HOP_HEADERS) delete headers[name];
  for (const name of RESPONSE_HEADERS_NOT_TRANSFORMED) delete headers[name];
  headers['content-type'] = fixed.content_type;
  if (!bodiless) headers['content-length'] = body.length;
  const vary = mergedVary(headers['vary'], varyOn);
  if (vary !== undefined) headers['vary'] = vary;
  const { checked, rest } = preparedHeaders(headers);
  return {
    name: 'fixed_response',
    onRequest(exchange) {
      const { res } = exchange;
      // An error status the route answers itself is the tenant's choice (maintenance), not its origin's
      // failure: the access log and error_responses_total name it so.
      if (fixed.status >= 400) exchange.errorCode = FIXED_RESPONSE_CODE;
      writeAnswerHead(res, fixed.status, rest, checked);
      if (exchange.req.method === 'HEAD' || bodiless) res.end();
      else res.end(body);
      return 'handled';
    },
  };
}

function locationVariable(name: LocationVariable, exchange: GatewayExchange): string {
  switch (name) {
    case 'path':
      return exchange.path;
    case 'query':
      return exchange.query;
    case 'host':
      return requestHost(exchange.req);
  }
}

function redirectStage(redirect: Redirect, varyOn: string | undefined): RouteStage {
  const location = compileRedirectLocation(redirect, locationVariable);
  return {
    name: 'redirect',
    onRequest(exchange) {
      const value = location(exchange);
      if (value === undefined) {
        failExchange(exchange, 414, 'uri_too_long', REDIRECT_LOCATION_TOO_LONG);
        return 'handled';
      }
      const headers: Record<string, string | number> = { location: value, 'content-length': 0 };
      if (varyOn !== undefined) headers['vary'] = varyOn;
      writeAnswerHead(exchange.res, redirect.status, headers);
      exchange.res.end();
      return 'handled';
    },
  };
}
