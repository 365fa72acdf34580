import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { describe, expect, it } from 'vitest';
import { routeConfig } from '../domain/gateway-config.js';
import { AmbiguousQuery, RouteMatcher } from './route-matcher.js';

function route(
  path_pattern: string,
  auth_mode: 'public' | 'apikey_required',
  query: Array<{ name: string; exact: string }> = [],
) {
  return {
    config: routeConfig.parse({
      id: randomUUID(),
      origin_id: randomUUID(),
      path_pattern,
      auth_mode,
      match: query.length === 0 ? null : { hosts: [], headers: [], query },
    }),
  };
}

const request = (query: string) => ({
  facts: { req: { headers: { host: 'acme.localhost' } as IncomingHttpHeaders }, query },
  preflight: false,
});

describe('RouteMatcher.resolve with a repeated query parameter', () => {
  const pdf = route('/reports/*', 'public', [{ name: 'format', exact: 'pdf' }]);
  const keyed = route('/reports/*', 'apikey_required');
  const admin = route('/panel/*', 'apikey_required', [{ name: 'admin', exact: 'true' }]);
  const panel = route('/panel/*', 'public');
  const matcher = new RouteMatcher([pdf, keyed, admin, panel]);
  const resolve = (path: string, query: string) => matcher.resolve('GET', path, request(query));

  it('is ambiguous when the first or the last value reaches a differently protected route', () => {
    const polluted = resolve('/reports/q3', '?format=pdf&format=csv');
    expect(polluted).toBeInstanceOf(AmbiguousQuery);
    expect((polluted as AmbiguousQuery<unknown>).parameter).toBe('format');
    expect((polluted as AmbiguousQuery<unknown>).routes).toEqual([pdf, keyed]);
    expect(resolve('/panel/x', '?admin=true&admin=false')).toBeInstanceOf(AmbiguousQuery);
  });

  it('orders the values of every spelling as sent, pairs after a `;` right after their piece', () => {
    // Any value: admin=true holds; the first value sent, in another spelling, is false.
    expect(resolve('/panel/x', '?admin[]=false&Admin=true')).toBeInstanceOf(AmbiguousQuery);
    // `format=csv` is inside the first piece, before the second piece's `format=pdf`.
    expect(resolve('/reports/q3', '?x=1;format=csv&format=pdf')).toBeInstanceOf(AmbiguousQuery);
  });

  it('keeps today’s route when the values agree, no condition reads the parameter, or there is no query', () => {
    expect(resolve('/reports/q3', '?format=pdf&FORMAT=pdf&format[]=pdf')).toBe(pdf);
    expect(resolve('/reports/q3', '?format=pdf&page=1&page=2')).toBe(pdf);
    expect(resolve('/reports/q3', '')).toBe(keyed);
    expect(resolve('/panel/x', '?admin=true&admin=true')).toBe(admin);
  });

  it('keeps today’s route when every reading reaches an equally protected route', () => {
    const en = route('/docs/*', 'public', [{ name: 'lang', exact: 'en' }]);
    const docs = route('/docs/*', 'public');
    const keyedElsewhere = route('/private/*', 'apikey_required');
    const m = new RouteMatcher([en, docs, keyedElsewhere]);
    expect(m.resolve('GET', '/docs/intro', request('?lang=en&lang=de'))).toBe(en);
  });

  it('reads the first and last value through the condition value index as without it', () => {
    const formats = Array.from({ length: 9 }, (_, i) =>
      route('/exports/*', 'public', [{ name: 'format', exact: `v${i}` }]),
    );
    const keyedExports = route('/exports/*', 'apikey_required');
    for (const indexConditionValues of [true, false]) {
      const m = new RouteMatcher([...formats, keyedExports], null, { indexConditionValues });
      expect(m.resolve('GET', '/exports/x', request('?format=v0&format=other'))).toBeInstanceOf(
        AmbiguousQuery,
      );
      expect(m.resolve('GET', '/exports/x', request('?format=v0&format=v0'))).toBe(formats[0]);
      expect(m.resolve('GET', '/exports/x', request('?format=v0&format=v1'))).toBe(formats[0]);
    }
  });

  it('tests no condition again for a query without a repeated parameter the conditions read', () => {
    const tests = (query: string) => {
      const before = matcher.conditionTests;
      resolve('/reports/q3', query);
      return matcher.conditionTests - before;
    };
    const once = tests('?format=pdf');
    expect(tests('?format=pdf&page=1&page=2')).toBe(once);
    expect(tests('?format=pdf&format=csv')).toBeGreaterThan(once);
  });
});
