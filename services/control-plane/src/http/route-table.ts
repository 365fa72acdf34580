import type express from 'express';
import type { RequestHandler } from 'express';
import { ApiError } from './errors.js';

/**
 * The routes an express app registers, read from its router stack (routers mounted at a path
 * included), and what that makes of a request's method: the same table answers OPTIONS, 405 with
 * `Allow` for a method no route of the path serves, and lets a test compare the app with /openapi.json.
 */

export interface RegisteredRoute {
  method: string;
  /** Express path, e.g. `/api/v1/tenants/:id`. */
  path: string;
}

interface Route {
  path: unknown;
  methods: Record<string, boolean>;
}

interface Layer {
  route?: Route;
  handle?: { stack?: Layer[] };
  rawPath?: unknown;
  slash?: boolean;
}

/** Calls `visit` with each route of the stack (express's route object) and its full path. */
function walk(stack: readonly Layer[], prefix: string, visit: (route: Route, path: string) => void): void {
  for (const layer of stack) {
    if (layer.route && typeof layer.route.path === 'string') {
      visit(layer.route, prefix + layer.route.path);
    } else if (layer.handle?.stack) {
      const mount = typeof layer.rawPath === 'string' && !layer.slash ? layer.rawPath : '';
      walk(layer.handle.stack, prefix + mount, visit);
    }
  }
}

function appStack(app: express.Express): Layer[] {
  return (app.router as unknown as { stack: Layer[] }).stack;
}

export function registeredRoutes(app: express.Express): RegisteredRoute[] {
  const routes: RegisteredRoute[] = [];
  walk(appStack(app), '', (route, path) => {
    for (const [method, on] of Object.entries(route.methods)) {
      if (on && method !== '_all') routes.push({ method: method.toUpperCase(), path });
    }
  });
  return routes;
}

/**
 * The route template (`/api/v1/tenants/:id`) of the route a request matched (express's `req.route`),
 * never its path with ids. `req.baseUrl` cannot stand in for the mount: express restores it when an
 * error leaves a router, before the error handler answers. Read from the router stack at the first
 * lookup, once every route is registered.
 */
export function routeTemplates(app: express.Express): (route: unknown) => string | undefined {
  let templates: WeakMap<object, string> | undefined;
  return (route) => {
    if (typeof route !== 'object' || route === null) return undefined;
    if (templates === undefined) {
      const found = new WeakMap<object, string>();
      walk(appStack(app), '', (registered, path) => found.set(registered, path));
      templates = found;
    }
    return templates.get(route);
  };
}

interface PathMethods {
  matcher: RegExp;
  methods: Set<string>;
}

function matcherOf(path: string): RegExp {
  const pattern = path
    .split('/')
    .map((segment) => (segment.startsWith(':') ? '[^/]+' : segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('/');
  return new RegExp(`^${pattern}$`);
}

function tableOf(app: express.Express): PathMethods[] {
  const byPath = new Map<string, Set<string>>();
  for (const { method, path } of registeredRoutes(app)) {
    const methods = byPath.get(path) ?? new Set<string>();
    methods.add(method);
    if (method === 'GET') methods.add('HEAD');
    methods.add('OPTIONS');
    byPath.set(path, methods);
  }
  return [...byPath].map(([path, methods]) => ({ matcher: matcherOf(path), methods }));
}

/**
 * Mount first: OPTIONS on a known path → 204 with `Allow`; a method no route of the path serves →
 * 405 `method_not_allowed` with `Allow` (before authentication: the answer is the same for everyone).
 * Unknown paths fall through to the 404.
 */
export function methodDispatch(app: express.Express): RequestHandler {
  let table: PathMethods[] | undefined;
  return (req, res, next) => {
    table ??= tableOf(app);
    const allowed = new Set<string>();
    for (const entry of table)
      if (entry.matcher.test(req.path)) for (const m of entry.methods) allowed.add(m);
    if (allowed.size === 0 || (allowed.has(req.method) && req.method !== 'OPTIONS')) {
      next();
      return;
    }
    const allow = [...allowed].sort().join(', ');
    res.setHeader('Allow', allow);
    if (req.method === 'OPTIONS') {
      res.status(204).end();
      return;
    }
    next(
      new ApiError(405, 'method_not_allowed', `${req.method} is not allowed on ${req.path}`, [
        { field: 'method', issue: `allowed: ${allow}` },
      ]),
    );
  };
}
