import { type HeaderTransform, HOST_BOUND_HEADERS } from '@vantageedge/shared/domain/route-policies';
import { withoutWrites } from '@vantageedge/shared/gateway-policies/header-transform';
import {
  compilePathRewrite,
  REWRITTEN_PATH_TOO_LONG,
} from '@vantageedge/shared/gateway-policies/path-rewrite';
import {
  applyRequestHeaderTransform,
  compileRequestHeaderTransform,
} from '@vantageedge/shared/gateway-policies/request-header-transform';
import { HOP_BY_HOP_HEADERS } from '@vantageedge/shared/http/hop-by-hop-headers';
import { isVary, varyWithOrigin } from '../cors/cors-stage.js';
import { failExchange } from '../pipeline/errors.js';
import type { GatewayExchange } from '../pipeline/exchange.js';
import { ROUTE_ONLY, type RoutePolicy, type RouteStage } from '../pipeline/stage.js';
import {
  applyHeaderTransform,
  type CompiledHeaderTransform,
  compileHeaderTransform,
  withPreparedSets,
} from './header-transform.js';
import { compileQueryTransform } from './query-transform.js';
import { compileValueTemplate, namesRequestValues } from './value-template.js';

/**
 * What the origin receives: `request_headers` (set / add / remove on the headers forwarded:
 * shared/src/gateway-policies/request-header-transform.ts, which explain runs too), `rewrite_path` and
 * `query`. After authentication (values may name the consumer) and before the
 * response cache, which keys on what the origin receives. Identity and forwarding headers
 * (x-vantageedge-*, X-Forwarded-*) stay the gateway's: the control plane refuses transforms of them.
 *
 * The headers the route writes reach the origin also where the gateway drops the client's own
 * (X-Client-IP, X-Api-Key, …: forwarded-headers.ts): the value is the tenant's, not the client's.
 */
export function createRequestTransformPolicy(): RoutePolicy {
  return {
    name: 'request_transform',
    readsOrigins: false,
    compiledFrom: ROUTE_ONLY,
    compileRoute({ route }) {
      const headers = compileRequestHeaderTransform<GatewayExchange>(
        route.request_headers,
        compileValueTemplate,
      );
      const rewrite = route.rewrite_path ? compilePathRewrite(route.rewrite_path, route.path_pattern) : null;
      const query = compileQueryTransform(route.query);
      if (headers === null && rewrite === null && query === null) return null;
      const stage: RouteStage = {
        name: 'request_transform',
        onRequest(exchange) {
          if (headers !== null) {
            applyRequestHeaderTransform(headers, exchange.req.headers, exchange);
            exchange.routeRequestHeaders = headers.written;
          }
          if (rewrite !== null) {
            const path = rewrite(exchange.path);
            if (path === null) {
              failExchange(exchange, 414, 'uri_too_long', REWRITTEN_PATH_TOO_LONG);
              return 'handled';
            }
            exchange.forwardPath = path;
          }
          if (query !== null) exchange.query = query(exchange);
          return 'continue';
        },
      };
      return stage;
    },
  };
}

/**
 * `response_headers` on the origin's response, but for writes with this request's values
 * (createPerRequestResponseHeadersPolicy). Placed after the response cache in the pipeline, so its
 * response hook runs first (hooks run in reverse) and the cache stores the transformed headers: a HIT
 * answers with them too. Answers the gateway makes itself (errors, fixed responses) are not changed.
 *
 * On a route without a cache, the headers it sets to a fixed value are checked once, here, and go into
 * the head as prepared lines (ResponseHead.checkedHeaders) instead of through node's checks on every
 * response.
 */
export function createResponseHeadersPolicy(): RoutePolicy {
  return {
    name: 'response_headers',
    readsOrigins: false,
    compiledFrom: ROUTE_ONLY,
    compileRoute({ route }) {
      const headers = compileResponseHeaderTransform(responseTransformPart(route.response_headers, 'stored'));
      if (headers === null) return null;
      // The cache keeps a copy of the head's headers, not of its prepared lines.
      const { prepared, rest } =
        route.cache_policy?.enabled === true ? { prepared: [], rest: headers } : withPreparedSets(headers);
      if (prepared.length === 0) {
        return {
          name: 'response_headers',
          onResponse(exchange, head) {
            applyHeaderTransform(headers, head.headers, exchange);
            return undefined;
          },
        };
      }
      return {
        name: 'response_headers',
        onResponse(exchange, head) {
          if (rest !== null) applyHeaderTransform(rest, head.headers, exchange);
          // Set: the origin's line of the same name goes (undici's names are in lower case).
          for (const header of prepared)
            if (head.headers[header.key] !== undefined) delete head.headers[header.key];
          head.checkedHeaders = prepared;
          return undefined;
        },
      };
    },
  };
}

/**
 * The `response_headers` writes whose values are the request's own (`${client_ip}`, `${request_id}`,
 * `${consumer_id}`). Placed before the response cache: its response hook runs after the cache took its
 * copy of the origin's headers, so an entry never holds one client's address or consumer for the next
 * one; an answer the cache replays gets the request's own values (exchange.perRequestResponseHeaders).
 */
export function createPerRequestResponseHeadersPolicy(): RoutePolicy {
  return {
    name: 'response_headers_per_request',
    readsOrigins: false,
    compiledFrom: ROUTE_ONLY,
    compileRoute({ route }) {
      const part = responseTransformPart(route.response_headers, 'per_request');
      const headers = compileResponseHeaderTransform(
        (route.cors ?? null) === null ? part : withVaryOrigin(part),
      );
      if (headers === null) return null;
      return {
        name: 'response_headers_per_request',
        onRequest(exchange) {
          exchange.perRequestResponseHeaders = headers;
          return 'continue';
        },
        onResponse(exchange, head) {
          applyHeaderTransform(headers, head.headers, exchange);
          return undefined;
        },
      };
    },
  };
}

/**
 * A CORS route's answers vary on Origin (cors-stage.ts). Its cors_vary stage keeps Origin in a Vary the
 * route's transform writes, but runs before these writes (and not on a cache HIT they are applied to):
 * a Vary they set names Origin itself.
 */
function withVaryOrigin(transform: HeaderTransform | null): HeaderTransform | null {
  if (transform === null || !Object.keys(transform.set).some(isVary)) return transform;
  const set = Object.fromEntries(
    Object.entries(transform.set).map(([name, value]) => [
      name,
      isVary(name) ? varyWithOrigin(value) : value,
    ]),
  );
  return { ...transform, set };
}

function compileResponseHeaderTransform(transform: HeaderTransform | null): CompiledHeaderTransform | null {
  return withoutWrites(compileHeaderTransform(transform), responseHeaderNeverWritten);
}

type ResponseTransformPart = 'stored' | 'per_request';
type ResponseTransformParts = Readonly<Record<ResponseTransformPart, HeaderTransform>>;

/**
 * One part of a route's response_headers. `per_request`: every write (set, add) of a header one of
 * whose written values names the request's own values, so that a header's lines keep their order;
 * `stored`: the removals and the other writes (the removals run first either way, as in one transform).
 */
function responseTransformPart(
  transform: HeaderTransform | null | undefined,
  part: ResponseTransformPart,
): HeaderTransform | null {
  if (transform === null || transform === undefined) return null;
  let parts = splitsByTransform.get(transform);
  if (parts === undefined) {
    parts = splitResponseTransform(transform);
    splitsByTransform.set(transform, parts);
  }
  return parts[part];
}

/** Both policies compile each route: the second takes the split the first one made of the same transform. */
const splitsByTransform = new WeakMap<HeaderTransform, ResponseTransformParts>();

const NO_WRITES: HeaderTransform = { set: {}, add: {}, remove: [] };

function splitResponseTransform(transform: HeaderTransform): ResponseTransformParts {
  const perRequest = new Set<string>();
  for (const values of [transform.set, transform.add]) {
    for (const [name, value] of Object.entries(values)) {
      if (namesRequestValues(value)) perRequest.add(name.toLowerCase());
    }
  }
  if (perRequest.size === 0) return { stored: transform, per_request: NO_WRITES };
  const inPart =
    (part: ResponseTransformPart) =>
    ([name]: [string, string]) =>
      perRequest.has(name.toLowerCase()) === (part === 'per_request');
  const only = (part: ResponseTransformPart): HeaderTransform => ({
    set: Object.fromEntries(Object.entries(transform.set).filter(inPart(part))),
    add: Object.fromEntries(Object.entries(transform.add).filter(inPart(part))),
    remove: part === 'stored' ? transform.remove : [],
  });
  return { stored: only('stored'), per_request: only('per_request') };
}

/**
 * Commands refuse Clear-Site-Data (on a platform host it clears every tenant's cookies), Alt-Svc, NEL
 * and Report-To (they outlive the tenant's hold on the host) and hop-by-hop fields (node throws on them
 * for an HTTP/2 client) in a response transform.
 */
const responseHeaderNeverWritten = (name: string) =>
  name === 'clear-site-data' || HOST_BOUND_HEADERS.includes(name) || HOP_BY_HOP_HEADERS.includes(name);
