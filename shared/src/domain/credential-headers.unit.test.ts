import { describe, expect, it } from 'vitest';
import {
  isCredentialHeader,
  isCredentialQueryParam,
  REDACTED_VALUE,
  redactedCredentials,
  redactedHeaderTransform,
  redactedQueryTransform,
  urlWithoutCredentials,
} from './credential-headers.js';

describe('credential headers', () => {
  it.each([
    'authorization',
    'Authorization',
    'proxy-authorization',
    'cookie',
    'x-api-key',
    'api-key',
    'apikey',
    'X_API_KEY',
    'x-auth-token',
    'x-access-token',
    'x-amz-security-token',
    'x-vault-token',
    'x-client-secret',
    'x-db-password',
    'x-passwd',
    'x-goog-api-key',
    'x-my_api_key',
    'x-credentials',
    'x-hub-signature-256',
    'x-session-id',
    'ocp-apim-subscription-key',
    'X-Auth-Key',
    'x.auth.key',
    'dd-application-key',
    'x-app-key',
    'x_access_key',
    'x-client-key',
    'x-subscription-key',
    // PHP origins read a `.` in a header's name as `_`: X.Api.Key is their X-Api-Key.
    'X.Api.Key',
    'x.functions.key',
    'x.auth.key',
  ])('%s is a credential header', (name) => {
    expect(isCredentialHeader(name)).toBe(true);
  });

  it.each([
    'x-tenant',
    'x-request-source',
    'accept',
    'x-client-ip',
    'user-agent',
    'x-forwarded-user',
    'x-cache-key',
    'x-idempotency-key',
    'x-routing-key',
  ])('%s is not', (name) => {
    expect(isCredentialHeader(name)).toBe(false);
  });

  it('redacts set and add values, never remove, and every request_headers of a deep value', () => {
    const transform = {
      set: { authorization: 'Bearer s', 'x-a': '1' },
      add: { cookie: 'c=1' },
      remove: ['x-api-key'],
    };
    expect(redactedHeaderTransform(transform)).toEqual({
      set: { authorization: REDACTED_VALUE, 'x-a': '1' },
      add: { cookie: REDACTED_VALUE },
      remove: ['x-api-key'],
    });
    expect(transform.set.authorization).toBe('Bearer s');
    expect(redactedHeaderTransform(null)).toBeNull();
    expect(
      redactedCredentials({ routes: [{ request_headers: transform, response_headers: transform }] }),
    ).toEqual({
      routes: [{ request_headers: redactedHeaderTransform(transform), response_headers: transform }],
    });
  });
});

describe('credential query parameters', () => {
  it.each([
    'api_key',
    'apikey',
    'apiKey',
    'api-key',
    'key',
    'Key',
    'access_token',
    'accessToken',
    'id_token',
    'token',
    'auth',
    'sig',
    'signature',
    'Signature',
    'X-Amz-Signature',
    'X-Amz-Security-Token',
    'X-Amz-Credential',
    'X-Goog-Signature',
    'client_secret',
    'password',
    'passwd',
    'private_key',
    'session_id',
    'hmac',
    'jwt',
    'code',
    'access_key',
    'accessKey',
    'subscription-key',
    'user[password]',
    'authorization',
    // Spellings origins read as one of those (PHP: `api.key` and `api key` are `api_key`, `key[0]` is `key`).
    'api.key',
    'Api Key',
    'key[0]',
    '[sig]',
    ' code',
    // ASP.NET Core and Spring read `sig.v` as a property of `sig`, as `sig[v]` is `sig`'s to PHP.
    'Sig.v',
    'code.value',
  ])('%s is a credential query parameter', (name) => {
    expect(isCredentialQueryParam(name)).toBe(true);
  });

  it.each([
    'page',
    'limit',
    'q',
    'format',
    'lang',
    'region',
    'author',
    'authority',
    'keyword',
    'keys',
    'key_id',
    'cache_key',
    'sort_key',
    'monkey',
    'design',
    'signed',
    'X-Amz-SignedHeaders',
    'X-Amz-Date',
    'X-Amz-Expires',
    'X-Amz-Algorithm',
    'codec',
    'country_code',
    'promo_code',
    'utm_source',
    'client_id',
    'redirect_uri',
  ])('%s is not', (name) => {
    expect(isCredentialQueryParam(name)).toBe(false);
  });

  it('redacts set and add values of a query transform, never remove, and every route query of a deep value', () => {
    const query = {
      // biome-ignore lint/suspicious/noTemplateCurlyInString: ${…} is the route policies’ own value-template syntax
      set: { api_key: 'k-1', format: 'json', sig: '${request_id}' },
      add: { access_token: 't-1', page: '2' },
      remove: ['key'],
    };
    const redacted = {
      set: { api_key: REDACTED_VALUE, format: 'json', sig: REDACTED_VALUE },
      add: { access_token: REDACTED_VALUE, page: '2' },
      remove: ['key'],
    };
    expect(redactedQueryTransform(query)).toEqual(redacted);
    expect(query.set.api_key).toBe('k-1');
    expect(redactedQueryTransform(null)).toBeNull();
    const headers = {
      set: { authorization: 'Bearer s', key: 'not-a-header-credential' },
      add: {},
      remove: [],
    };
    expect(
      redactedCredentials({
        routes: [{ request_headers: headers, query, match: { query: [{ name: 'key', equals: 'x' }] } }],
        request: { query: 'api_key=typed-by-the-caller' },
      }),
    ).toEqual({
      routes: [
        {
          request_headers: {
            set: { authorization: REDACTED_VALUE, key: 'not-a-header-credential' },
            add: {},
            remove: [],
          },
          query: redacted,
          match: { query: [{ name: 'key', equals: 'x' }] },
        },
      ],
      request: { query: 'api_key=typed-by-the-caller' },
    });
  });
});

describe('configured URLs', () => {
  it.each([
    ['https://user:secret@api.example.com/v1', 'https://api.example.com/v1'],
    ['https://sk_live_123@api.example.com:8443/', 'https://api.example.com:8443/'],
    [
      'https://api.example.com/v1?api_key=k1&region=eu',
      `https://api.example.com/v1?api_key=${REDACTED_VALUE}&region=eu`,
    ],
    [
      'https://api.example.com/?Access%5FToken=t&sig',
      `https://api.example.com/?Access%5FToken=${REDACTED_VALUE}&sig=${REDACTED_VALUE}`,
    ],
    ['https://u:p@[2001:db8::1]/x?token=t#top', `https://[2001:db8::1]/x?token=${REDACTED_VALUE}#top`],
  ])('shows %s as %s', (url, shown) => {
    expect(urlWithoutCredentials(url)).toBe(shown);
  });

  // Regression: a key after a `;` was shown as written, while the servers that split pairs at `;` too
  // (Go before 1.17, Python before 3.9.2, Perl's CGI; the gateways' own match conditions) read it as a
  // parameter of its own: the jwks_url's key went out in the gateways' fetch-failure log and in reads.
  it.each([
    ['https://idp.example/jwks?v=2;api_key=k1', `https://idp.example/jwks?v=2;api_key=${REDACTED_VALUE}`],
    [
      'https://idp.example/jwks?v=2;API%5FKEY=k1;region=eu&key=k2',
      `https://idp.example/jwks?v=2;API%5FKEY=${REDACTED_VALUE};region=eu&key=${REDACTED_VALUE}`,
    ],
    ['https://idp.example/jwks?api+key=k1;x=1', `https://idp.example/jwks?api+key=${REDACTED_VALUE}`],
  ])('shows %s as %s (pairs split at ; too)', (url, shown) => {
    expect(urlWithoutCredentials(url)).toBe(shown);
  });

  // Regression: a name with an escape that is not UTF-8 (`%FF`, or no escape at all: `%ZZ`) beside the
  // encoded letters of a credential's was shown as written, while PHP decodes the rest and reads the key.
  it.each([
    [
      'https://idp.example/jwks?v=2&%74oken[%FF]=k1',
      `https://idp.example/jwks?v=2&%74oken[%FF]=${REDACTED_VALUE}`,
    ],
    [
      'https://idp.example/jwks?api%5Fkey[%ZZ]=k1',
      `https://idp.example/jwks?api%5Fkey[%ZZ]=${REDACTED_VALUE}`,
    ],
  ])('shows %s as %s (a name not all UTF-8 escapes)', (url, shown) => {
    expect(urlWithoutCredentials(url)).toBe(shown);
  });

  it('leaves a query whose ; pairs hold no credential exactly as written', () => {
    const url = 'https://api.example.com/v1?region=eu;zone=a&page=2';
    expect(urlWithoutCredentials(url)).toBe(url);
  });

  it.each(['https://api.example.com', 'http://api.example.com/v1?region=eu', 'not a url'])(
    'leaves %s exactly as written',
    (url) => {
      expect(urlWithoutCredentials(url)).toBe(url);
    },
  );

  it('redacts every url and jwks_url member, and only those', () => {
    expect(
      redactedCredentials({
        targets: [{ url: 'https://u:p@a.example.com', weight: 1 }],
        settings: { oidc: { jwks_url: 'https://u:p@idp.example.com/jwks', issuer: 'https://u:p@idp' } },
      }),
    ).toEqual({
      targets: [{ url: 'https://a.example.com/', weight: 1 }],
      settings: { oidc: { jwks_url: 'https://idp.example.com/jwks', issuer: 'https://u:p@idp' } },
    });
  });
});
