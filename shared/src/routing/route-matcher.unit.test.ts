import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { routeConfig } from '../domain/gateway-config.js';
import { AmbiguousPath, InvalidRoutePatternError, RouteMatcher } from './route-matcher.js';

function route(path_pattern: string, extra: { methods?: string[]; priority?: number } = {}) {
  return {
    config: routeConfig.parse({
      id: randomUUID(),
      origin_id: randomUUID(),
      path_pattern,
      auth_mode: 'public',
      ...extra,
    }),
  };
}

function matcher(...routes: ReturnType<typeof route>[]) {
  const m = new RouteMatcher(routes);
  return (method: string, path: string) => m.match(method, path)?.config.path_pattern;
}

describe('RouteMatcher', () => {
  it('matches exact, :param, segment wildcard and string prefix patterns', () => {
    const match = matcher(route('/health'), route('/users/:id'), route('/files/*'), route('/v1*'));
    expect(match('GET', '/health')).toBe('/health');
    expect(match('GET', '/health/x')).toBeUndefined();
    expect(match('GET', '/users/42')).toBe('/users/:id');
    expect(match('GET', '/users/')).toBeUndefined();
    expect(match('GET', '/users/42/posts')).toBeUndefined();
    expect(match('GET', '/files')).toBe('/files/*');
    expect(match('GET', '/files/a/b/c')).toBe('/files/*');
    expect(match('GET', '/filesystem')).toBeUndefined();
    expect(match('GET', '/v1beta/x')).toBe('/v1*');
    expect(match('GET', '/nothing')).toBeUndefined();
  });

  it('prefers literal over :param over wildcard at equal priority, whatever the input order', () => {
    const match = matcher(route('/api/*'), route('/api/users/:id'), route('/api/users/me'), route('/*'));
    expect(match('GET', '/api/users/me')).toBe('/api/users/me');
    expect(match('GET', '/api/users/7')).toBe('/api/users/:id');
    expect(match('GET', '/api/other')).toBe('/api/*');
    expect(match('GET', '/elsewhere')).toBe('/*');
  });

  it('lets a higher priority win over specificity', () => {
    const match = matcher(route('/api/users/me'), route('/api/*', { priority: 10 }));
    expect(match('GET', '/api/users/me')).toBe('/api/*');
  });

  it('matches methods when the route lists them', () => {
    const match = matcher(route('/items', { methods: ['POST'] }), route('/items/*', { methods: [] }));
    expect(match('POST', '/items')).toBe('/items');
    expect(match('GET', '/items')).toBe('/items/*');
    const onlyPost = matcher(route('/items', { methods: ['post'] }));
    expect(onlyPost('DELETE', '/items')).toBeUndefined();
  });

  it('matches the root pattern only at the root', () => {
    const match = matcher(route('/'));
    expect(match('GET', '/')).toBe('/');
    expect(match('GET', '/x')).toBeUndefined();
  });

  it('rejects a wildcard in the middle of a pattern', () => {
    expect(() => new RouteMatcher([route('/a/*/b')])).toThrow(InvalidRoutePatternError);
  });
});

/**
 * Regression tests for path spellings that bypassed route protection: an origin that routes
 * case-insensitively, ignores a trailing slash or drops `;` parameters served a protected handler for
 * a path the gateway matched to a public route.
 */
describe('RouteMatcher.resolve', () => {
  function protectedRoute(path_pattern: string, auth_mode: string, extra: Record<string, unknown> = {}) {
    return {
      config: routeConfig.parse({
        id: randomUUID(),
        origin_id: randomUUID(),
        path_pattern,
        auth_mode,
        ...extra,
      }),
    };
  }
  const publicApi = protectedRoute('/api/*', 'public');
  const admin = protectedRoute('/api/admin/*', 'apikey_required');
  const internal = protectedRoute('/api/internal', 'jwt_required');
  const m = new RouteMatcher([publicApi, admin, internal]);
  const resolve = (path: string) => {
    const result = m.resolve('GET', path);
    return result instanceof AmbiguousPath ? 'ambiguous' : result?.config.path_pattern;
  };

  it.each([
    ['/api/posts', '/api/*'],
    ['/api/admin/users', '/api/admin/*'],
    ['/api/ADMIN/users', '/api/admin/*'],
    ['/api/Admin', '/api/admin/*'],
    ['/api/internal', '/api/internal'],
    ['/api/internal/', '/api/internal'],
    ['/api/Internal/', '/api/internal'],
    ['/api/admin;x=1/users', '/api/admin/*'],
    ['/api/x/..;/admin/users', '/api/admin/*'],
    ['/api/internal;jsessionid=2', '/api/internal'],
    ['/api/public;x/posts', '/api/*'],
    ['/API/admin/users', undefined], // routes match as written: a reading never adds a route
  ])('%s is handled by %s', (path, pattern) => {
    expect(resolve(path)).toBe(pattern);
  });

  // Regression: only ASCII letters were read in either case, so /%C3%89T%C3%89/x (/ÉTÉ/x) went to the
  // public /* route although ASP.NET and IIS, which decode the path and compare letters in any case,
  // serve it with the handler of the key-protected /été/*.
  it('reads percent-encoded letters beyond ASCII in either case too', () => {
    const accented = new RouteMatcher([
      protectedRoute('/*', 'public'),
      protectedRoute('/%C3%A9t%C3%A9/*', 'apikey_required'),
      protectedRoute('/Stra%C3%9Fe/*', 'apikey_required'),
    ]);
    const pattern = (path: string) => {
      const result = accented.resolve('GET', path);
      return result instanceof AmbiguousPath ? 'ambiguous' : result?.config.path_pattern;
    };
    expect(pattern('/%C3%A9t%C3%A9/x')).toBe('/%C3%A9t%C3%A9/*');
    expect(pattern('/%C3%89T%C3%89/x')).toBe('/%C3%A9t%C3%A9/*');
    expect(pattern('/%C3%89t%C3%A9')).toBe('/%C3%A9t%C3%A9/*');
    expect(pattern('/STRA%C3%9FE/x')).toBe('/Stra%C3%9Fe/*');
    // Not letters of the same word in another case: an invalid sequence, another letter, ß as SS.
    expect(pattern('/%C3%89t%C3/x')).toBe('/*');
    expect(pattern('/%C3%A8t%C3%A9/x')).toBe('/*');
    expect(pattern('/STRASSE/x')).toBe('/*');
  });

  // Regression: HEAD skipped a GET-only keyed route, and an origin answered it with the GET handler.
  it('gives HEAD the protection of the GET route an origin answers it with', () => {
    const byMethod = new RouteMatcher([
      protectedRoute('/m/*', 'public'),
      protectedRoute('/m/admin/*', 'apikey_required', { methods: ['GET'] }),
      protectedRoute('/m/v2/*', 'apikey_required', { methods: ['GET'], strip_prefix: '/m/v2' }),
    ]);
    const pattern = (method: string, path: string) => {
      const result = byMethod.resolve(method, path);
      return result instanceof AmbiguousPath ? 'ambiguous' : result?.config.path_pattern;
    };
    expect(pattern('HEAD', '/m/admin/users')).toBe('/m/admin/*');
    expect(pattern('HEAD', '/m/ADMIN/users')).toBe('/m/admin/*');
    expect(pattern('HEAD', '/m/v2/users')).toBe('/m/v2/*'); // matched as written: its strip_prefix applies
    expect(pattern('HEAD', '/m/V2/users')).toBe('ambiguous');
    expect(pattern('POST', '/m/admin/users')).toBe('/m/*');
    expect(pattern('HEAD', '/m/posts')).toBe('/m/*');
  });

  it('refuses a path whose readings match routes of protections that cannot be ordered', () => {
    const mixed = new RouteMatcher([
      protectedRoute('/x/*', 'public'),
      protectedRoute('/x/A/*', 'apikey_required'),
      protectedRoute('/x/a/*', 'jwt_required'),
    ]);
    const result = mixed.resolve('GET', '/x/A/1');
    expect(result).toBeInstanceOf(AmbiguousPath);
    expect(mixed.resolve('GET', '/x/b')?.constructor).not.toBe(AmbiguousPath);
  });

  it('hands the request to the strictest route when the protections can be ordered', () => {
    const scoped = new RouteMatcher([
      protectedRoute('/a/*', 'apikey_required', { required_scopes: ['read', 'write'] }),
      protectedRoute('/a/b/*', 'apikey_required', { required_scopes: ['read'] }),
      protectedRoute('/a/B/*', 'jwt_or_apikey', { required_scopes: ['read'] }),
    ]);
    const pattern = (path: string) => {
      const result = scoped.resolve('GET', path);
      return result instanceof AmbiguousPath ? 'ambiguous' : result?.config.path_pattern;
    };
    expect(pattern('/a/b/x')).toBe('/a/b/*'); // /a/B/* (either credential) protects less
    expect(pattern('/a/B/x')).toBe('/a/b/*'); // /a/b/* (API key only) protects more
    expect(pattern('/a/c')).toBe('/a/*');
  });

  // Regression: the stricter route's rewrite ran on a path its pattern never matched. /P/ADMIN/users
  // went out unrewritten, and /svc/x/..;/admin/users became /internal/..;/admin/users (Tomcat: /admin/users).
  it('refuses a path whose strictest route is found only through a reading and rewrites its path', () => {
    const rewriting = new RouteMatcher([
      protectedRoute('/*', 'public'),
      protectedRoute('/p/admin/*', 'apikey_required', {
        rewrite_path: { from_prefix: '/p/admin', to_prefix: '/internal' },
      }),
      protectedRoute('/legacy/*', 'apikey_required', { strip_prefix: '/legacy' }),
    ]);
    const pattern = (path: string) => {
      const result = rewriting.resolve('GET', path);
      return result instanceof AmbiguousPath ? 'ambiguous' : result?.config.path_pattern;
    };
    for (const path of ['/P/ADMIN/users', '/p/admin;x=1/users', '/LEGACY/users', '/legacy;x/users'])
      expect(pattern(path), path).toBe('ambiguous');
    expect(pattern('/p/admin/users')).toBe('/p/admin/*');
    expect(pattern('/legacy/users')).toBe('/legacy/*');
    expect(pattern('/other')).toBe('/*');
  });

  // Regression (of the rule above): a trailing slash toggled keeps the route's segments, and such a
  // route served /admin/stats/ (stripped to /stats/) before; it answered 403 ambiguous_path.
  it('hands a path to a rewriting route whose pattern matches it with its trailing slash toggled', () => {
    const rewriting = new RouteMatcher([
      protectedRoute('/*', 'public'),
      protectedRoute('/admin/stats', 'apikey_required', { strip_prefix: '/admin' }),
      protectedRoute('/users/:id', 'apikey_required', { rewrite_path: { template: '/v2/users/:id' } }),
    ]);
    const pattern = (path: string) => {
      const result = rewriting.resolve('GET', path);
      return result instanceof AmbiguousPath ? 'ambiguous' : result?.config.path_pattern;
    };
    expect(pattern('/admin/stats/')).toBe('/admin/stats');
    expect(pattern('/users/42/')).toBe('/users/:id');
    expect(pattern('/ADMIN/stats/')).toBe('ambiguous');
  });

  // Regression: a route without ip_rules of its own applies the tenant's; compared as having none, a
  // route with its own (open) rules was taken as the stricter, and /portal/Admin/x reached the origin
  // from addresses the tenant's rules keep out of /portal/admin/*.
  it("compares a route without ip_rules by the tenant's", () => {
    const tenantIpRules = { allow: ['10.0.0.0/8'], deny: [] };
    const routes = [
      protectedRoute('/portal/*', 'public', { ip_rules: { allow: [], deny: ['192.0.2.66'] } }),
      protectedRoute('/portal/admin/*', 'public'),
    ];
    const withTenantRules = new RouteMatcher(routes, tenantIpRules).resolve('GET', '/portal/Admin/x');
    expect(withTenantRules).toBeInstanceOf(AmbiguousPath);
    const withoutTenantRules = new RouteMatcher(routes).resolve('GET', '/portal/Admin/x');
    expect(withoutTenantRules).toBe(routes[0]);
  });

  it('answers like match when every route protects the same', () => {
    const uniform = new RouteMatcher([route('/api/*'), route('/api/admin/*')]);
    expect(uniform.resolve('GET', '/api/ADMIN/x')).toBe(uniform.match('GET', '/api/ADMIN/x'));
  });
});

describe('RouteMatcher.evaluate (explaining a decision)', () => {
  it('lists every route in match order with its method and path verdicts', () => {
    const users = route('/api/users/:id', { methods: ['GET'] });
    const anything = route('/api/*');
    const admin = route('/admin/*', { priority: 5 });
    const m = new RouteMatcher([anything, users, admin]);
    const evaluations = m.evaluate('POST', '/api/users/1');
    expect(evaluations.map((e) => [e.route.config.path_pattern, e.methodMatches, e.pathMatches])).toEqual([
      ['/admin/*', true, false],
      ['/api/users/:id', false, true],
      ['/api/*', true, true],
    ]);
    expect(evaluations.map((e) => e.rank)).toEqual([0, 1, 2]);
  });

  it('agrees with match: the first route accepting both method and path is the one matched', () => {
    const routes = [
      route('/api/users/:id', { methods: ['GET', 'DELETE'] }),
      route('/api/users/me'),
      route('/api/*', { methods: ['POST'] }),
      route('/api*'),
      route('/', { methods: ['GET'] }),
    ];
    const m = new RouteMatcher(routes);
    for (const method of ['GET', 'POST', 'DELETE', 'PATCH']) {
      for (const path of ['/', '/api', '/api/users/me', '/api/users/7', '/apix', '/other']) {
        const first = m.evaluate(method, path).find((e) => e.methodMatches && e.pathMatches);
        expect(first?.route, `${method} ${path}`).toBe(m.match(method, path));
      }
    }
  });
});
