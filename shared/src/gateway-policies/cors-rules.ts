import type { RouteConfig } from '../domain/gateway-config.js';
import { type CorsPolicy, HTTP_METHODS } from '../domain/route-policies.js';

/**
 * A route's CORS policy compiled for the gateway's CORS stage (and for "explain a request", which
 * reports what that stage would do): which origins, methods and request headers a browser may use.
 */

export interface CompiledCors {
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

export function compileCors(cors: CorsPolicy, methods: readonly string[]): CompiledCors {
  const exactOrigins = new Set<string>();
  const wildcardOrigins: Array<[string, string]> = [];
  for (const listed of cors.allow_origins) {
    const origin = withoutDefaultPort(listed);
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

/**
 * The origin as a browser serializes it: without its scheme's default port (`https://a.example:443` is
 * sent as `https://a.example`), so that an origin listed or sent with it is the same origin (as Kong's
 * cors plugin reads both).
 */
function withoutDefaultPort(origin: string): string {
  if (origin.endsWith(':443') && origin.startsWith('https://')) return origin.slice(0, -4);
  if (origin.endsWith(':80') && origin.startsWith('http://')) return origin.slice(0, -3);
  return origin;
}

/**
 * DNS labels (letters, digits, inner hyphens), lower-case, each followed by its dot, from `lastIndex`
 * on: what a wildcard stands for is such labels up to the dot that starts its suffix.
 */
const LABELS_WITH_DOTS = /(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*/y;

/**
 * The longest Origin a site can have: scheme, a host name of at most 253 characters (RFC 1035) and a
 * port. A wildcard's label check is a regular expression over what precedes its suffix, and a client's
 * Origin may be as long as the request head (16 KiB): against 50 wildcards, ≈4 ms of the event loop
 * per request.
 */
const MAX_ORIGIN_LENGTH = 'https://'.length + 253 + ':65535'.length;

export function originAllowed(cors: CompiledCors, origin: string): boolean {
  if (cors.anyOrigin) return true;
  const lower = withoutDefaultPort(origin.toLowerCase());
  if (cors.exactOrigins.has(lower)) return true;
  if (lower.length > MAX_ORIGIN_LENGTH) return false;
  // Where the labels after the scheme stop being DNS labels: found once, whatever the number of
  // wildcards the Origin ends with (a route may nest 50: *.x.com, *.x.x.com, …).
  let labelsEnd = -1;
  for (const [scheme, suffix] of cors.wildcardOrigins) {
    // One or more DNS labels before the suffix: https://a.example.com and https://a.b.example.com, never
    // https://example.com itself, https://evilexample.com nor https://evil.com#.example.com.
    if (lower.length > scheme.length + suffix.length && lower.startsWith(scheme) && lower.endsWith(suffix)) {
      if (labelsEnd < 0) {
        // Every wildcard the Origin starts with has its scheme (`http://` or `https://`).
        LABELS_WITH_DOTS.lastIndex = scheme.length;
        labelsEnd = scheme.length + LABELS_WITH_DOTS.exec(lower)![0].length;
      }
      // The suffix starts with the dot after the last label.
      if (lower.length - suffix.length < labelsEnd) return true;
    }
  }
  return false;
}

/**
 * The request's Origin as a CORS route's cache key holds it. The CORS fields are the gateway's, added
 * to each answer (a HIT too) and never stored, so the answers differ by little more than them: a site
 * the policy lists keys its own entries, in any case and with or without its scheme's default port (as
 * the policy reads it); every Origin it refuses shares one, and with `*` every Origin does (the policy
 * tells no site from another), so a client sending a new Origin with each request is not answered by
 * the origin each time. Requests without an Origin key theirs apart (''). Neither shared value can
 * be a header's (no field value holds a line break).
 */
export function originAsKeyed(cors: CompiledCors, origin: string | undefined): string {
  if (origin === undefined) return '';
  if (cors.anyOrigin) return '\nany';
  return originAllowed(cors, origin) ? withoutDefaultPort(origin.toLowerCase()) : '\nrefused';
}

/** The route's CORS compiled, or null without one; methods default to the route's, then to all. */
export function compileRouteCors(route: Pick<RouteConfig, 'cors' | 'methods'>): CompiledCors | null {
  if (route.cors === null || route.cors === undefined) return null;
  const methods =
    route.cors.allow_methods.length > 0
      ? route.cors.allow_methods
      : route.methods.length > 0
        ? route.methods
        : HTTP_METHODS;
  return compileCors(route.cors, methods);
}

/** Why a requested header is refused, or undefined when every one is allowed. */
export function deniedHeader(
  cors: CompiledCors,
  requested: string | string[] | undefined,
): string | undefined {
  if (requested === undefined) return undefined;
  const text = Array.isArray(requested) ? requested.join(',') : requested;
  for (const raw of text.split(',')) {
    const name = raw.trim().toLowerCase();
    if (name !== '' && !cors.headers.has(name)) return `the header ${name} is not allowed`;
  }
  return undefined;
}

/** Why a preflight is refused (origin, announced method, requested headers), or undefined when allowed. */
export function preflightRefusal(
  cors: CompiledCors,
  origin: string | undefined,
  method: string,
  requestedHeaders: string | string[] | undefined,
): string | undefined {
  if (origin === undefined || !originAllowed(cors, origin)) return 'this origin is not allowed';
  if (!cors.methods.has(method.toUpperCase())) return `the method ${method.toUpperCase()} is not allowed`;
  return deniedHeader(cors, requestedHeaders);
}
