import type { CorsPolicy } from '@vantageedge/shared/domain/route-policies';
import { HTTP_METHODS } from '@vantageedge/shared/domain/route-policies';
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
      if (route.cors === null || route.cors === undefined) return null;
      const methods =
        route.cors.allow_methods.length > 0
          ? route.cors.allow_methods
          : route.methods.length > 0
            ? route.methods
            : HTTP_METHODS;
      return corsStage(compileCors(route.cors, methods));
    },
  };
}

interface CompiledCors {
  readonly anyOrigin: boolean;
  readonly exactOrigins: ReadonlySet<string>;
  /** `https://*.example.com` → ["https://", ".example.com"]. */
  readonly wildcardOrigins: ReadonlyArray<readonly [scheme: string, suffix: string]>;
  readonly credentials: boolean;
  readonly methods: ReadonlySet<string>;
  readonly allowMethods: string;
  readonly headers: ReadonlySet<string>;
  readonly allowHeaders: string;
  readonly exposeHeaders: string;
  readonly maxAge: string;
}

function compileCors(cors: CorsPolicy, methods: readonly string[]): CompiledCors {
  const exactOrigins = new Set<string>();
  const wildcardOrigins: Array<[string, string]> = [];
  for (const origin of cors.allow_origins) {
    const star = origin.indexOf('://*.');
    if (star >= 0) wildcardOrigins.push([origin.slice(0, star + 3), origin.slice(star + 4)]);
    else if (origin !== '*') exactOrigins.add(origin);
  }
  const upper = methods.map((method) => method.toUpperCase());
  const headers = cors.allow_headers.map((header) => header.toLowerCase());
  return {
    anyOrigin: cors.allow_origins.includes('*'),
    exactOrigins,
    wildcardOrigins,
    credentials: cors.allow_credentials,
    methods: new Set(upper),
    allowMethods: upper.join(', '),
    headers: new Set(headers),
    allowHeaders: headers.join(', '),
    exposeHeaders: cors.expose_headers.join(', '),
    maxAge: String(cors.max_age_seconds),
  };
}

function originAllowed(cors: CompiledCors, origin: string): boolean {
  if (cors.anyOrigin) return true;
  const lower = origin.toLowerCase();
  if (cors.exactOrigins.has(lower)) return true;
  for (const [scheme, suffix] of cors.wildcardOrigins) {
    // One or more labels before the suffix: https://a.example.com and https://a.b.example.com, never
    // https://example.com itself nor https://evilexample.com.
    if (lower.length > scheme.length + suffix.length && lower.startsWith(scheme) && lower.endsWith(suffix)) {
      const label = lower.slice(scheme.length, lower.length - suffix.length);
      if (!label.includes('/') && !label.includes(':') && !label.startsWith('.')) return true;
    }
  }
  return false;
}

function corsStage(cors: CompiledCors): RouteStage {
  return {
    name: 'cors',
    onRequest(exchange) {
      const { req, res } = exchange;
      const origin = req.headers.origin;
      if (exchange.corsPreflight) return answerPreflight(cors, exchange, origin);
      res.setHeader('vary', 'Origin');
      if (origin !== undefined && originAllowed(cors, origin)) {
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
  const refusal =
    origin === undefined || !originAllowed(cors, origin)
      ? 'this origin is not allowed'
      : !cors.methods.has(method)
        ? `the method ${method} is not allowed`
        : deniedHeader(cors, req.headers['access-control-request-headers']);
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

/** Why a requested header is refused, or undefined when every one is allowed. */
function deniedHeader(cors: CompiledCors, requested: string | string[] | undefined): string | undefined {
  if (requested === undefined) return undefined;
  const text = Array.isArray(requested) ? requested.join(',') : requested;
  for (const raw of text.split(',')) {
    const name = raw.trim().toLowerCase();
    if (name !== '' && !cors.headers.has(name)) return `the header ${name} is not allowed`;
  }
  return undefined;
}
