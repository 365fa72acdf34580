import {
  type CompiledCors,
  compileRouteCors,
  originAllowed,
  preflightRefusal,
} from '@vantageedge/shared/gateway-policies/cors-rules';
import { CheckedHeader, setCheckedHeaders } from '../http/gateway-server-response.js';
import { failExchange } from '../pipeline/errors.js';
import type { GatewayExchange } from '../pipeline/exchange.js';
import {
  rememberVerdicts,
  TenantVerdictBudgets,
  type VerdictBudget,
} from '../pipeline/remembered-verdicts.js';
import { ROUTE_ONLY, type RoutePolicy, type RouteStage, type StageResult } from '../pipeline/stage.js';

/**
 * CORS on a route, answered by the gateway before authentication (a browser's preflight carries no
 * credentials, so a jwt_required route would otherwise refuse it with 401).
 * - Preflight (OPTIONS with Origin and Access-Control-Request-Method, matched to the route by the method
 *   it announces): 204 with the allowed origin, methods, headers, credentials and max age; 403
 *   `cors_not_allowed` when the origin, the method or a requested header is not allowed.
 * - Actual request from an allowed origin: Access-Control-Allow-Origin (+ -Credentials, -Expose-Headers)
 *   on whatever answers it (the origin, a cache HIT, an error of a later stage or of the gateway's
 *   checks before the route's stages, setRouteCorsHeaders). The origin's own CORS
 *   headers never reach the client, whatever the Origin (createCorsOriginHeadersPolicy). Every answer
 *   of the route says `Vary: Origin` (merged with the origin's or a fixed_response's Vary), and the response cache keys the
 *   route's entries on Origin.
 * - WebSocket upgrade with an Origin the route does not allow: 403 `cors_not_allowed`, before
 *   authentication and before the origin is asked; one without Origin (no browser) is not affected.
 */
export function createCorsPolicy(): RoutePolicy {
  const budgets = new TenantVerdictBudgets(TENANT_CORS_ORIGINS_REMEMBERED);
  return {
    name: 'cors',
    readsOrigins: false,
    // The tenant's id is all it reads of the tenant (the same in every version).
    compiledFrom: ROUTE_ONLY,
    compileRoute({ tenant, route }) {
      const cors = compileRouteCors(route);
      return cors === null ? null : corsStage(cors, budgets.of(tenant.id));
    },
    tenantRetired: (tenant, replacement) => budgets.tenantRetired(tenant, replacement),
  };
}

/**
 * CORS response fields: on a CORS route the gateway's alone. An origin with CORS of its own (one
 * reflecting any Origin, with credentials) would otherwise answer sites the route's policy refuses, and
 * add credentials or exposed headers the policy does not give.
 */
const ORIGIN_CORS_HEADERS = [
  'access-control-allow-origin',
  'access-control-allow-credentials',
  'access-control-expose-headers',
  'access-control-allow-methods',
  'access-control-allow-headers',
  'access-control-max-age',
];

const ORIGIN_CORS_HEADERS_DROPPED: RouteStage = {
  name: 'cors_origin_headers',
  onResponse(_exchange, head) {
    for (const name of ORIGIN_CORS_HEADERS) if (head.headers[name] !== undefined) delete head.headers[name];
    return undefined;
  },
};

/**
 * Drops the origin's CORS fields on a CORS route (those the CORS stage set already replace the
 * origin's anyway). Placed after the response cache, as response_headers is: its hook runs before the
 * cache's, so the cache stores the answer without them and a HIT has none either; before
 * response_headers' hook, so a route's own response_headers still write what they name.
 */
export function createCorsOriginHeadersPolicy(): RoutePolicy {
  return {
    name: 'cors_origin_headers',
    readsOrigins: false,
    compiledFrom: ROUTE_ONLY,
    compileRoute({ route }) {
      return (route.cors ?? null) === null ? null : ORIGIN_CORS_HEADERS_DROPPED;
    },
  };
}

/**
 * `Vary: Origin` on every answer of a CORS route whose `response_headers` set, add to or remove Vary: the
 * answer's Access-Control-Allow-Origin follows the request's Origin, and a browser's or a shared cache
 * that is not told so serves one site's answer to another. Placed between the response cache and
 * response_headers: its hook runs after the route's transform and before the cache takes its copy, so
 * a cache HIT varies on Origin too.
 */
export function createCorsVaryPolicy(): RoutePolicy {
  return {
    name: 'cors_vary',
    readsOrigins: false,
    compiledFrom: ROUTE_ONLY,
    compileRoute({ route }) {
      const transform = route.response_headers ?? null;
      if ((route.cors ?? null) === null || transform === null) return null;
      // The request's stage puts Origin into every answer's Vary; only the route's own transform of
      // Vary can take it out again.
      const touchesVary =
        Object.keys(transform.set).some(isVary) ||
        Object.keys(transform.add).some(isVary) ||
        transform.remove.some(isVary);
      return touchesVary ? CORS_VARY_KEPT : null;
    },
  };
}

export const isVary = (name: string): boolean => name.toLowerCase() === 'vary';

/** `vary` with Origin after its fields, unless it names Origin (or is `*`) already. */
export function varyWithOrigin(vary: string): string {
  for (const field of vary.split(',')) {
    const name = field.trim().toLowerCase();
    if (name === 'origin' || name === '*') return vary;
  }
  return vary.trim() === '' ? 'Origin' : `${vary}, Origin`;
}

const CORS_VARY_KEPT: RouteStage = {
  name: 'cors_vary',
  onResponse(exchange, head) {
    const vary = head.headers['vary'];
    if (vary === undefined) {
      // The answer's Vary (the origin's, merged with Origin) was removed: Origin alone, as the
      // answers of an origin without Vary have it (from the request's stage).
      if (!exchange.res.hasHeader('vary')) setCheckedHeaders(exchange.res, VARY_ONLY);
      return undefined;
    }
    const text = Array.isArray(vary) ? vary.join(', ') : String(vary);
    const kept = varyWithOrigin(text);
    if (kept === text) return undefined;
    head.headers['vary'] = kept;
    exchange.varyOriginByGateway = true;
    return undefined;
  },
};

/** An Origin longer than any a policy can allow (route-policies.ts) is decided, never kept. */
const CORS_ORIGINS_REMEMBERED = { entries: 64, valueLength: 300 };
/** By all of a tenant's CORS routes together (≈0.7 MB at most, Origins of 300 characters). */
const TENANT_CORS_ORIGINS_REMEMBERED = 1024;

const VARY_ORIGIN = new CheckedHeader('vary', 'Origin');
const VARY_ONLY: readonly CheckedHeader[] = [VARY_ORIGIN];

/** The name of the stage that answers preflights and sets a route's CORS headers on its answers. */
const CORS_STAGE = 'cors';

function corsStage(cors: CompiledCors, budget: VerdictBudget): RouteStage {
  const allowCredentials = cors.credentials
    ? new CheckedHeader('access-control-allow-credentials', 'true')
    : null;
  const exposeHeaders =
    cors.exposeHeaders === '' ? null : new CheckedHeader('access-control-expose-headers', cors.exposeHeaders);
  // For each request origin: the headers its requests get (Vary alone when it is not allowed). A
  // route's browsers come from a handful of web apps.
  const headersFor = rememberVerdicts(
    (origin): readonly CheckedHeader[] => {
      if (!originAllowed(cors, origin)) return VARY_ONLY;
      const allowOrigin = allowOriginHeader(cors.anyOrigin && !cors.credentials ? '*' : origin);
      if (allowOrigin === null) return VARY_ONLY;
      const headers = [VARY_ORIGIN, allowOrigin];
      if (allowCredentials !== null) headers.push(allowCredentials);
      if (exposeHeaders !== null) headers.push(exposeHeaders);
      return headers;
    },
    budget,
    CORS_ORIGINS_REMEMBERED,
  );
  const stage: RouteStage = {
    name: CORS_STAGE,
    onRequest(exchange) {
      const { req, res } = exchange;
      const origin = req.headers.origin;
      if (exchange.corsPreflight) return answerPreflight(cors, exchange, origin);
      setCheckedHeaders(res, origin === undefined ? VARY_ONLY : headersFor(origin));
      return 'continue';
    },
  };
  if (cors.anyOrigin) return stage;
  // Browsers apply no CORS to a WebSocket: any page may open one, with the user's cookies (cross-site
  // WebSocket hijacking). A browser always says which page opens it; other clients send no Origin.
  // The verdict is the one remembered for the route's requests: Vary alone for an origin not allowed.
  const refusesPage = (page: string | undefined): boolean =>
    page !== undefined && headersFor(page) === VARY_ONLY;
  return {
    ...stage,
    onUpgrade(exchange) {
      if (!refusesPage(exchange.req.headers.origin)) return 'continue';
      failExchange(exchange, 403, 'cors_not_allowed', WEBSOCKET_ORIGIN_REFUSED);
      return 'handled';
    },
    // A WebSocket a page opened while the policy allowed it ends once the policy no longer does.
    refusesOpenConnection: ({ page }) => (refusesPage(page) ? 'cors_not_allowed' : undefined),
  };
}

/**
 * The route's CORS headers on a refusal the gateway makes before the route's stages run (a loop, a
 * declared body over the gateway's limit), as on the refusals of its stages (a 401, a 429, a streamed
 * body's 413): a page the policy allows reads why its request failed, another cannot. Only on that
 * refusal's path; a preflight is refused without them (the browser fails it either way).
 */
export function setRouteCorsHeaders(exchange: GatewayExchange): void {
  if (exchange.corsPreflight) return;
  const cors = exchange.route?.stages.afterClientAddress.find((stage) => stage.name === CORS_STAGE);
  cors?.onRequest?.(exchange);
}

const WEBSOCKET_ORIGIN_REFUSED = 'the route’s CORS policy does not allow WebSockets from this Origin';

/** null for an origin no response can carry (node's parser lets few such bytes through). */
function allowOriginHeader(value: string): CheckedHeader | null {
  try {
    return new CheckedHeader('access-control-allow-origin', value);
  } catch {
    return null;
  }
}

function answerPreflight(
  cors: CompiledCors,
  exchange: GatewayExchange,
  origin: string | undefined,
): StageResult {
  const { req, res } = exchange;
  res.setHeader('vary', 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers');
  const method = String(req.headers['access-control-request-method'] ?? '').toUpperCase();
  const refusal = preflightRefusal(cors, origin, method, req.headers['access-control-request-headers']);
  if (refusal !== undefined) {
    failExchange(exchange, 403, 'cors_not_allowed', `CORS preflight refused: ${refusal}`);
    return 'handled';
  }
  res.setHeader('access-control-allow-origin', cors.anyOrigin && !cors.credentials ? '*' : origin!);
  if (cors.credentials) res.setHeader('access-control-allow-credentials', 'true');
  res.setHeader('access-control-allow-methods', cors.allowMethods);
  if (cors.allowHeaders !== '') res.setHeader('access-control-allow-headers', cors.allowHeaders);
  res.setHeader('access-control-max-age', cors.maxAge);
  res.setHeader('content-length', '0');
  res.writeHead(204);
  res.end();
  return 'handled';
}
