import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { routeConfig } from '../domain/gateway-config.js';
import { dottedParameterKey, parameterKey } from '../http/query-parameter-spellings.js';
import { countSearchParamsMade } from '../testing/search-params-count.js';
import { type ExactField, requestValue } from './match-conditions.js';
import { AmbiguousQuery, RouteMatcher } from './route-matcher.js';

function route(
  path_pattern: string,
  auth_mode: 'public' | 'apikey_required',
  query: Array<{ name: string; exact?: string; prefix?: string; present?: boolean }> = [],
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

  // ASP.NET Core reads `user[role]` as the `user.role` it binds, PHP `user_role`: an origin of either
  // kind may take the other value.
  it('is ambiguous when both readings of a condition on a name given with `.` are sent apart', () => {
    const staff = route('/staff/*', 'apikey_required', [{ name: 'user.role', exact: 'admin' }]);
    const m = new RouteMatcher([staff, route('/staff/*', 'public')]);
    const read = m.resolve('GET', '/staff/x', request('?user_role=guest&user[role]=admin'));
    expect(read).toBeInstanceOf(AmbiguousQuery);
    expect((read as AmbiguousQuery<unknown>).parameter).toBe('user_role');
    expect(m.resolve('GET', '/staff/x', request('?user[role]=admin'))).toBe(staff);
  });

  // PHP reads `user_role` alone, ASP.NET Core `user[role]` alone (its first value): the first and the
  // last of both together are neither origin's value when one spelling is sent around the other.
  it('is ambiguous when one reading of a name given with `.` is sent between values of the other', () => {
    const guests = route('/staff/*', 'public', [{ name: 'user.role', exact: 'guest' }]);
    const m = new RouteMatcher([guests, route('/staff/*', 'apikey_required')]);
    for (const query of [
      '?user_role=guest&user[role]=admin&user_role=guest',
      '?user[role]=guest&user_role=admin&user[role]=guest',
      '?user.role=guest&user[role]=admin&user_role=guest',
    ]) {
      expect({
        query,
        ambiguous: m.resolve('GET', '/staff/x', request(query)) instanceof AmbiguousQuery,
      }).toEqual({ query, ambiguous: true });
    }
    expect(m.resolve('GET', '/staff/x', request('?user_role=guest&user[role]=guest&user.role=guest'))).toBe(
      guests,
    );
  });

  it('orders the values of every spelling as sent, pairs after a `;` right after their piece', () => {
    // Any value: admin=true holds; the first value sent, in another spelling, is false.
    expect(resolve('/panel/x', '?admin[]=false&Admin=true')).toBeInstanceOf(AmbiguousQuery);
    // `format=csv` is inside the first piece, before the second piece's `format=pdf`.
    expect(resolve('/reports/q3', '?x=1;format=csv&format=pdf')).toBeInstanceOf(AmbiguousQuery);
  });

  it('reads the first and last value as an origin splitting pairs at `;` too, and as one that does not', () => {
    const html = route('/docs/*', 'public', [{ name: 'format', exact: 'html' }]);
    const pdf = route('/docs/*', 'apikey_required', [{ name: 'format', exact: 'pdf' }]);
    const docs = route('/docs/*', 'public');
    const m = new RouteMatcher([html, pdf, docs]);
    // Go before 1.17 and Python before 3.9.2 read `format=pdf` first; an origin not splitting at `;` reads
    // `pdf;format=html`, and the last pair after a `;` is `html`.
    const firstAfterSemicolon = m.resolve('GET', '/docs/a', request('?format=pdf;format=html'));
    expect(firstAfterSemicolon).toBeInstanceOf(AmbiguousQuery);
    expect((firstAfterSemicolon as AmbiguousQuery<unknown>).routes).toContain(pdf);
    // PHP does not split at `;`: its last (and only) value of the second piece is `pdf;…`, read by a prefix.
    const keyedPrefix = route('/files/*', 'apikey_required', [{ name: 'kind', prefix: 'pdf' }]);
    const files = route('/files/*', 'public', [{ name: 'kind', exact: 'html' }]);
    const m2 = new RouteMatcher([files, keyedPrefix, route('/files/*', 'public')]);
    expect(m2.resolve('GET', '/files/a', request('?kind=html&kind=pdf;kind=html'))).toBeInstanceOf(
      AmbiguousQuery,
    );
    // A pair only a `;` separates is no parameter to an origin reading `&` alone.
    const present = route('/opt/*', 'apikey_required', [{ name: 'debug', present: false }]);
    const m3 = new RouteMatcher([route('/opt/*', 'public', [{ name: 'debug', exact: '1' }]), present]);
    expect(m3.resolve('GET', '/opt/a', request('?x=1;debug=1;debug=2'))).toBeInstanceOf(AmbiguousQuery);
  });

  it('is ambiguous when a condition’s parameter is sent once, in a pair only a `;` separates', () => {
    // To an origin splitting pairs at `&` alone (PHP, Rails, Go since 1.17, node) `?x=1;format=pdf` holds
    // no `format`: it serves what the keyed route protects, while the public route was chosen for it.
    const sliced = resolve('/reports/q3', '?x=1;format=pdf');
    expect(sliced).toBeInstanceOf(AmbiguousQuery);
    expect((sliced as AmbiguousQuery<unknown>).parameter).toBe('format');
    expect((sliced as AmbiguousQuery<unknown>).routes).toEqual([pdf, keyed]);
    expect(resolve('/reports/q3', '?x=1&y=2;format=pdf')).toBeInstanceOf(AmbiguousQuery);
    // A pair of its own, or one every origin reads alike, keeps the route.
    expect(resolve('/reports/q3', '?x=1;y=2&format=pdf')).toBe(pdf);
    expect(resolve('/reports/q3', '?x=1;page=2')).toBe(keyed);
  });

  it('reads a `?` after the query’s own as part of the first name, as origins do', () => {
    // PHP, Rack, qs, Go, Python and node's URL read `??format=pdf` as `?format`: no `format` to any.
    expect(resolve('/reports/q3', '??format=pdf')).toBe(keyed);
    expect(resolve('/reports/q3', '??format=pdf;x=1')).toBe(keyed);
    // Every origin reads `format=pdf` here, in a pair of its own.
    expect(resolve('/reports/q3', '??&x=1;y=2&format=pdf')).toBe(pdf);
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
    // A `;` no condition's parameter is in reads as without it: no further readings.
    expect(tests('?format=pdf&format=csv&x=1;y=2')).toBe(tests('?format=pdf&format=csv'));
  });
});

describe('the value an origin reads of a repeated parameter', () => {
  /** What an origin reads of `name` (and `name[…]`): its pairs split at `&`, and at `;` too when it does. */
  function origin(raw: string, name: string, semicolons: boolean, takes: 'first' | 'last') {
    const pairs: Array<[string, string]> = [];
    for (const piece of raw.split('&')) {
      if (piece === '') continue;
      // Origins keep a `?` a piece begins with in its name (URLSearchParams would drop it: one is added).
      pairs.push(...new URLSearchParams(`?${semicolons ? piece.replaceAll(';', '&') : piece}`));
    }
    const values = pairs
      .filter(([sent]) =>
        // PHP's reading of the name, and ASP.NET Core's and Spring's of a `.` in it.
        [parameterKey(sent), dottedParameterKey(sent)].some(
          (key) => key !== undefined && (key === name || key.startsWith(`${name}[`)),
        ),
      )
      .map(([, value]) => value);
    return takes === 'first' ? values[0] : values.at(-1);
  }

  it('is the one each kind of origin reads, `;` or not', () => {
    const piece = fc.constantFrom('f', 'F', 'f[]', 'f[0]', 'g', '=', 'x', 'y', ';', '&', '[', '.', '1', '?');
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 24 }), (parts) => {
        const raw = parts.join('');
        for (const name of ['f', 'g', 'f[0]'])
          for (const semicolons of [false, true])
            for (const takes of ['first', 'last'] as const) {
              const field: ExactField = { kind: 'query', key: `query:${name}`, name };
              const facts = { req: { headers: {} }, query: `?${raw}`, queryReading: { takes, semicolons } };
              expect(requestValue(field, facts), `${raw}: ${name}`).toBe(
                origin(raw, name, semicolons, takes),
              );
            }
      }),
      { seed: 20_261_206, numRuns: 1_000 },
    );
  });
});

describe('RouteMatcher.resolve with a query of names that are not UTF-8', () => {
  const pdf = route('/reports/*', 'public', [{ name: 'format', exact: 'pdf' }]);
  const keyed = route('/reports/*', 'apikey_required');
  const matcher = new RouteMatcher([pdf, keyed]);

  // node's URLSearchParams decodes such a name by throwing, and catching, a URIError first (≈ 8 µs):
  // a query of 940 of them (6.5 KB) held a replica ≈ 7 ms on a route with a query condition.
  it('reads them as URLSearchParams does, without one', () => {
    const searchParams = countSearchParamsMade();
    const names = Array.from({ length: 939 }, (_, i) => `%FF${i}=1`).join('&');
    expect(matcher.resolve('GET', '/reports/q3', request(`?${names}&format=pdf`))).toBe(pdf);
    expect(matcher.resolve('GET', '/reports/q3', request(`?${names}&x=%FF;%66ormat=pdf`))).toBeInstanceOf(
      AmbiguousQuery,
    );
    expect(matcher.resolve('GET', '/reports/q3', request(`?${names}&format=csv`))).toBe(keyed);
    expect(searchParams.made).toBe(0);
  });
});
