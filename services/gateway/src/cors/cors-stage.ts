import {
  type CompiledCors,
  compileRouteCors,
  originAllowed,
  preflightRefusal,
} from '@vantageedge/shared/gateway-policies/cors-rules';
import { failExchange } from '../pipeline/errors.js';
import type { GatewayExchange } from '../pipeline/exchange.js';
import type { RoutePolicy, RouteStage, StageResult } from '../pipeline/stage.js';

/**
 * CORS on a route, answered by the gateway before authentication (a browser's preflight carries no
 * credentials, so a jwt_required route would otherwise refuse it with 401).
 * - Preflight (OPTIONS with Origin and Access-Control-Request-Method, matched to the route by the method
 *   it announces): 204 with the allowed origin, methods, headers, credentials and max age; 403
 *   `cors_not_allowed` when the origin, the method or a requested header is not allowed.
 * - Actual request from an allowed origin: Access-Control-Allow-Origin (+ -Credentials, -Expose-Headers)
 *   on whatever answers it (the origin, a cache HIT, an error of a later stage); the origin's own CORS
 *   headers are replaced. Every answer of the route says `Vary: Origin` (merged with the origin's Vary),
 *   and the response cache keys the route's entries on Origin.
 */
export function createCorsPolicy(): RoutePolicy {
  return {
    name: 'cors',
    compileRoute({ route }) {
      const cors = compileRouteCors(route);
      return cors === null ? null : corsStage(cors);
    },
  };
}

/** Origins remembered per route: a browser app sends the same few on every request. */
const REMEMBERED_ORIGINS = 256;

function corsStage(cors: CompiledCors): RouteStage {
  // Client-sent values: bounded, forgotten all at once when full.
  const verdicts = new Map<string, boolean>();
  const allowed = (origin: string): boolean => {
    let verdict = verdicts.get(origin);
    if (verdict === undefined) {
      verdict = originAllowed(cors, origin);
      if (verdicts.size >= REMEMBERED_ORIGINS) verdicts.clear();
      verdicts.set(origin, verdict);
    }
    return verdict;
  };
  return {
    name: 'cors',
    onRequest(exchange) {
      const { req, res } = exchange;
      const origin = req.headers.origin;
      if (exchange.corsPreflight) return answerPreflight(cors, exchange, origin);
      res.setHeader('vary', 'Origin');
      if (origin !== undefined && allowed(origin)) {
        res.setHeader('access-control-allow-origin', cors.anyOrigin && !cors.credentials ? '*' : origin);
        if (cors.credentials) res.setHeader('access-control-allow-credentials', 'true');
        if (cors.exposeHeaders !== '') res.setHeader('access-control-expose-headers', cors.exposeHeaders);
      }
      return 'continue';
    },
  };
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
