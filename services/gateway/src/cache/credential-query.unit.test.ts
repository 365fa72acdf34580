import { countSearchParamsMade } from '@vantageedge/shared/testing/search-params-count';
import { describe, expect, it } from 'vitest';
import { carriesCredentialQuery } from './client-credentials.js';

const NO_TRANSFORM = null;

describe('a credential in the query the origin gets', () => {
  // ASP.NET Core and Spring read `sig.v` as a property of `sig`, as origins read `sig[v]` as `sig`'s.
  it.each([
    'access_token=a',
    'Access_Token=a',
    'api_key[]=a',
    'api.key=a',
    'page=2;sig=a',
    'x=1&key=a',
    'Sig.v=a',
    // Classic ASP.NET decodes `%u002e` as `.` and its MVC binds `sig.v` as `sig`'s too.
    'sig%u002ev=a',
  ])('is found in %s, by its name as origins read it', (query) =>
    expect(carriesCredentialQuery(query, NO_TRANSFORM)).toBe(true),
  );

  it.each(['', 'page=2', 'cache_key=a', 'keyword=a', 'country_code=fr'])('is not found in %s', (query) =>
    expect(carriesCredentialQuery(query, NO_TRANSFORM)).toBe(false),
  );

  it("is not the client's when the route removes or sets the parameter; an added line leaves the client's first", () => {
    const transform = (part: object) => ({ set: {}, add: {}, remove: [], ...part });
    expect(carriesCredentialQuery('api_key=mine', transform({ set: { api_key: 'route' } }))).toBe(false);
    expect(carriesCredentialQuery('API_KEY=mine', transform({ remove: ['api_key'] }))).toBe(false);
    expect(carriesCredentialQuery('api_key=mine', transform({ add: { api_key: 'route' } }))).toBe(true);
    // `api_key[]` is the array PHP, Rails and Express fill from every spelling: the transform takes them all.
    for (const query of ['api_key=mine', 'api_key[0]=mine', 'Api_Key[]=mine']) {
      expect(carriesCredentialQuery(query, transform({ remove: ['api_key[]'] })), query).toBe(false);
    }
  });

  // node's URLSearchParams decodes a name that is not UTF-8 by throwing, and catching, a URIError first
  // (≈ 8 µs): a query of 940 such names cost a replica ≈ 7 ms on a route caching by its path alone.
  it('is looked for in a query of names that are not UTF-8 without URLSearchParams', () => {
    const searchParams = countSearchParamsMade();
    const names = Array.from({ length: 939 }, (_, i) => `%FF${i}=1`).join('&');
    expect(carriesCredentialQuery(`${names};Api%5FKey=a`, NO_TRANSFORM)).toBe(true);
    expect(carriesCredentialQuery(`${names}&page=2`, NO_TRANSFORM)).toBe(false);
    expect(searchParams.made).toBe(0);
  });
});
