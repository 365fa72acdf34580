import { randomUUID } from 'node:crypto';
import { routeConfig } from '@vantageedge/shared/domain/gateway-config';
import { describe, expect, it } from 'vitest';
import { InvalidRoutePatternError, RouteMatcher } from './route-matcher.js';

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
