import {
  type FixedResponse,
  HOST_BOUND_HEADERS,
  LOCATION_VARIABLES,
  type LocationVariable,
  parseTemplate,
  type Redirect,
  STATUSES_WITHOUT_BODY,
  type TemplatePart,
} from '@vantageedge/shared/domain/route-policies';
import { HOP_BY_HOP_HEADERS } from '@vantageedge/shared/http/hop-by-hop-headers';
import { requestHost } from '@vantageedge/shared/routing/match-conditions';
import { failExchange } from '../pipeline/errors.js';
import type { GatewayExchange } from '../pipeline/exchange.js';
import type { RoutePolicy, RouteStage } from '../pipeline/stage.js';

/**
 * Routes that answer themselves and never call an origin: `fixed_response` (status, headers, body —
 * e.g. maintenance mode: 503 with Retry-After) and `redirect` (status, location template). After IP
 * rules, CORS and authentication (the route's protection still applies), before rate limiting and the
 * response cache (a cached answer from before maintenance is never served).
 */
export function createFixedResponsePolicy(): RoutePolicy {
  return {
    name: 'fixed_response',
    compileRoute({ route }) {
      if (route.fixed_response) return fixedStage(route.fixed_response);
      if (route.redirect) return redirectStage(route.redirect);
      return null;
    },
  };
}

function fixedStage(fixed: FixedResponse): RouteStage {
  // A 204, 205 or 304 has no content (HTTP/2 clients reset a stream that announces some): commands
  // refuse a body for them, and a route stored before answers without it.
  const bodiless = STATUSES_WITHOUT_BODY.includes(fixed.status);
  const body = Buffer.from(bodiless ? '' : fixed.body, 'utf8');
  const headers: Record<string, string | number> = {};
  for (const [name, value] of Object.entries(fixed.headers)) headers[name.toLowerCase()] = value;
  // Refused by commands since they were found to clear every tenant's cookies (Clear-Site-Data), to
  // outlive the tenant's hold on the host (Alt-Svc, NEL) or to make node throw for HTTP/2 clients
  // (connection headers); a route stored before keeps the others.
  delete headers['clear-site-data'];
  for (const name of HOST_BOUND_HEADERS) delete headers[name];
  for (const name of HOP_BY_HOP_HEADERS) delete headers[name];
  headers['content-type'] = fixed.content_type;
  if (!bodiless) headers['content-length'] = body.length;
  return {
    name: 'fixed_response',
    onRequest(exchange) {
      const { res } = exchange;
      res.writeHead(fixed.status, headers);
      if (exchange.req.method === 'HEAD' || bodiless) res.end();
      else res.end(body);
      return 'handled';
    },
  };
}

/** Request-derived text in a Location header: anything but visible ASCII percent-encoded. */
const NOT_VISIBLE_ASCII = /[^\x21-\x7e]/g;
const encoded = (text: string) => text.replace(NOT_VISIBLE_ASCII, percentEncodedBytes);

/**
 * node reads a request's head as Latin-1, one character per byte (an HTTP/2 query may carry raw UTF-8):
 * each byte is encoded as itself, so the client is sent back to the bytes it asked for.
 */
function percentEncodedBytes(character: string): string {
  const code = character.charCodeAt(0);
  const bytes = code <= 0xff ? [code] : Buffer.from(character, 'utf8');
  let out = '';
  for (const byte of bytes) out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  return out;
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

/**
 * The longest Location a redirect sends: a template names the request's path, query and host as often
 * as it likes (2,000 characters of `${path}` are 285 copies of a path the client chose), and the
 * answer must not cost the replica hundreds of times what the client sent. A `${path}${query}` after
 * the longest template stays far below it with the listener's default header limit.
 */
const MAX_LOCATION_LENGTH = 32 * 1024;

function redirectStage(redirect: Redirect): RouteStage {
  const parsed = parseTemplate(redirect.location, LOCATION_VARIABLES);
  const parts: TemplatePart<LocationVariable>[] = parsed.ok ? parsed.parts : [{ literal: redirect.location }];
  let literalLength = 0;
  const uses = new Map<LocationVariable, number>();
  for (const part of parts) {
    if ('literal' in part) literalLength += part.literal.length;
    else uses.set(part.variable, (uses.get(part.variable) ?? 0) + 1);
  }
  return {
    name: 'redirect',
    onRequest(exchange) {
      // Each variable read and encoded once; its length counted before anything is built.
      const values = new Map<LocationVariable, string>();
      let length = literalLength;
      for (const [name, count] of uses) {
        const value = encoded(locationVariable(name, exchange));
        values.set(name, value);
        length += count * value.length;
      }
      if (length > MAX_LOCATION_LENGTH) {
        failExchange(
          exchange,
          414,
          'uri_too_long',
          `the redirect's location would be longer than ${MAX_LOCATION_LENGTH} characters with this request's path and query`,
        );
        return 'handled';
      }
      let location = '';
      for (const part of parts) location += 'literal' in part ? part.literal : values.get(part.variable)!;
      exchange.res.writeHead(redirect.status, { location, 'content-length': 0 });
      exchange.res.end();
      return 'handled';
    },
  };
}
