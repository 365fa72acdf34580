import type { RouteMutation } from './route-mutations.js';

/**
 * Edge values for the commands beside routes: tenant settings, origins and API keys, one field at a
 * time, at and one past each limit, empty, duplicated, in odd Unicode, odd numbers and odd URLs. The
 * differential test (config-command-compile-differential.int.test.ts) sends them through the admin API.
 */

const repeat = <T>(count: number, make: (index: number) => T): T[] =>
  Array.from({ length: count }, (_, index) => make(index));

const of = (field: string, values: readonly unknown[]): RouteMutation[] =>
  values.map((value) => ({ field, value }));

const ODD_NUMBERS = [0, -0, 1.5, -1, 1e308, 2 ** 53 + 1, '1', null];

/** Host and URL spellings an upstream or a key-set address may come in. */
export const ODD_URLS = [
  'http://example.com',
  'HTTPS://EXAMPLE.COM',
  'http://user:secret@example.com',
  'http://user@example.com',
  'http://example.com/base?token=1',
  'http://example.com/#fragment',
  'http://example.com:0',
  'http://example.com:65535',
  'http://example.com:65536',
  'http://example.com.',
  'http://%65xample.com',
  'http://[2001:db8::1]:8080',
  'http://[::ffff:192.0.2.1]',
  'http://[fe80::1%25eth0]',
  'http://0x7f.1',
  'http://192.0.2.1',
  'http://日本.example',
  'http://example.com/a%zz',
  'http://example.com/a/../b',
  'http://exa mple.com',
  'ftp://example.com',
  'http:example.com',
  '',
];

/** A public P-256 signing key of a service (its coordinates are the curve's base point). */
export const SERVICE_KEY = {
  kty: 'EC',
  crv: 'P-256',
  kid: 'svc-1',
  x: 'axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY',
  y: 'T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU',
};

export function tenantSettingsMutations(): RouteMutation[] {
  const rateLimit = (extra: object) => ({ requests_per_second: 10, ...extra });
  return [
    ...of('rate_limit', [
      ...ODD_NUMBERS.map((requests_per_second) => ({ requests_per_second })),
      rateLimit({ scope: 'tenant' }),
      rateLimit({ scope: 'ip', accuracy: 'fast' }),
      rateLimit({ burst: 10_000_000 }),
      rateLimit({ burst: 10_000_001 }),
      rateLimit({ algorithm: 'sliding_window', window_seconds: 86_400, limit: 10_000_000 }),
      rateLimit({ algorithm: 'sliding_window', window_seconds: 86_401 }),
      rateLimit({ window_seconds: 60 }),
      { requests_per_second: 0.001, burst: 2592 },
      { requests_per_second: 0.001, burst: 2593 },
      null,
    ]),
    ...of('quota', [
      { requests_per_day: 1 },
      { requests_per_day: 0 },
      { requests_per_day: 1_000_000_000_000 },
      { requests_per_day: 1_000_000_000_001 },
      { requests_per_month: 1.5 },
      { requests_per_month: 2 ** 53 + 1 },
      { requests_per_day: 10, requests_per_month: 5 },
      {},
      null,
    ]),
    ...of('cache', [
      { max_bytes: 1024 },
      { max_bytes: 1023 },
      { max_bytes: 4 * 1024 ** 3 },
      { max_bytes: 4 * 1024 ** 3 + 1 },
      { max_bytes: 1e308 },
      { max_bytes: 1024.5 },
      {},
      null,
    ]),
    ...of('ip_rules', [
      { allow: ['0.0.0.0/0'] },
      { deny: ['::/0'] },
      { allow: ['10.0.0.0/8'], deny: ['10.0.0.0/8'] },
      { allow: ['10.0.0.0/8', '10.0.0.0/8'] },
      { allow: ['2001:db8::/32', '2001:DB8::/32'] },
      { allow: ['::ffff:10.0.0.0/104'] },
      { allow: ['0::ffff:1.2.3.4/120'] },
      { allow: ['10.0.0.1/33'] },
      { allow: ['10.0.0.0/08'] },
      { allow: ['010.0.0.1'] },
      { allow: ['fe80::1%eth0'] },
      { allow: ['1.2.3.4 '] },
      { allow: repeat(200, (i) => `10.0.${i}.0/24`) },
      { allow: repeat(201, (i) => `10.1.${i}.0/24`) },
      {},
      null,
    ]),
    ...of(
      'oidc',
      ODD_URLS.map((jwks_url) => ({ issuer: 'https://issuer.example', audience: 'api', jwks_url })),
    ),
    ...of('oidc', [
      { issuer: '', audience: 'api', jwks_url: 'https://issuer.example/jwks' },
      { issuer: 'i'.repeat(2048), audience: 'a'.repeat(2048), jwks_url: 'https://issuer.example/jwks' },
      { issuer: 'i'.repeat(2049), audience: 'api', jwks_url: 'https://issuer.example/jwks' },
      { issuer: '\u202e', audience: '\u2028', jwks_url: 'https://issuer.example/jwks' },
      null,
    ]),
    ...of('service_accounts', [
      [],
      [{ id: 'svc', keys: [SERVICE_KEY] }],
      [{ id: 'svc', keys: [SERVICE_KEY], scopes: ['a', 'a', 'A'] }],
      [{ id: 'svc', keys: [] }],
      [
        { id: 'svc', keys: [SERVICE_KEY] },
        { id: 'SVC', keys: [{ ...SERVICE_KEY, kid: 'svc-2' }] },
      ],
      [
        { id: 'svc', keys: [SERVICE_KEY] },
        { id: 'other', keys: [SERVICE_KEY] },
      ],
      [{ id: 'svc', keys: [SERVICE_KEY, { ...SERVICE_KEY, kid: 'SVC-1' }] }],
      [{ id: 'svc', keys: [{ ...SERVICE_KEY, crv: 'P-256K' }] }],
      [{ id: 'svc', keys: [{ ...SERVICE_KEY, kid: '' }] }],
      [{ id: 'svc', keys: [{ ...SERVICE_KEY, kid: '\u00e9' }] }],
      [
        {
          id: 'svc',
          keys: [
            { ...SERVICE_KEY, kid: 'e\u0301' },
            { ...SERVICE_KEY, kid: '\u00e9' },
          ],
        },
      ],
      [{ id: 'svc', keys: [{ ...SERVICE_KEY, alg: 'HS256' }] }],
      [{ id: 'svc', keys: [{ ...SERVICE_KEY, alg: 'RS256' }] }],
      [{ id: 'svc', keys: [{ ...SERVICE_KEY, use: 'enc' }] }],
      [{ id: 'svc', keys: [{ ...SERVICE_KEY, d: 'x' }] }],
      [{ id: 'svc', keys: [{ ...SERVICE_KEY, x: 'AAAA' }] }],
      [{ id: 'svc', keys: [{ ...SERVICE_KEY, constructor: 'x' }] }],
      [{ id: 'a b', keys: [SERVICE_KEY] }],
      [{ id: 's'.repeat(201), keys: [SERVICE_KEY] }],
      [{ id: 'svc', keys: repeat(11, (i) => ({ ...SERVICE_KEY, kid: `k${i}` })) }],
      repeat(21, (i) => ({ id: `svc${i}`, keys: [{ ...SERVICE_KEY, kid: `k${i}` }] })),
    ]),
    ...of('custom_domains', [['api.example.com']]),
    ...of('unknown_setting', [1]),
  ];
}

export function originMutations(): RouteMutation[] {
  const healthCheck = (active: object) => ({ active });
  return [
    ...of('url', ODD_URLS),
    ...of('targets', [
      ...ODD_URLS.map((url) => [{ url }]),
      [],
      [{ url: 'http://example.com', weight: 0 }],
      [{ url: 'http://example.com', weight: 1000 }],
      [{ url: 'http://example.com', weight: 1001 }],
      [{ url: 'http://example.com', weight: 1.5 }],
      [{ url: 'http://example.com', weight: -0 }],
      [{ url: 'http://example.com' }, { url: 'http://example.com' }],
      [{ url: 'http://example.com' }, { url: 'HTTP://EXAMPLE.COM/' }],
      [{ url: 'http://example.com/a' }, { url: 'http://example.com/a/' }],
      repeat(100, (i) => ({ url: `http://t${i}.example.com` })),
      repeat(101, (i) => ({ url: `http://t${i}.example.com` })),
    ]),
    ...of('timeout_seconds', [...ODD_NUMBERS, 300, 301]),
    ...of('health_check_path', [
      '/',
      '/a?b',
      '/a#b',
      '/a b',
      '/%zz',
      '/日本',
      '',
      'health',
      `/${'a'.repeat(199)}`,
    ]),
    ...of('health_check', [
      {},
      healthCheck({ interval_seconds: 1 }),
      healthCheck({ interval_seconds: 0.5 }),
      healthCheck({ interval_seconds: 3600 }),
      healthCheck({ interval_seconds: 3601 }),
      healthCheck({ timeout_seconds: 60, interval_seconds: 1 }),
      healthCheck({ timeout_seconds: 0.05 }),
      healthCheck({ healthy_threshold: 0 }),
      healthCheck({ unhealthy_threshold: 1.5 }),
      { passive: { unhealthy_threshold: 100 } },
      { passive: { enabled: false } },
    ]),
    ...of('circuit_breaker', [
      {},
      { error_rate_threshold: 0.01 },
      { error_rate_threshold: 1 },
      { error_rate_threshold: 1.0000001 },
      { open_seconds: 0.1 },
      { window_requests: 10_000 },
      { half_open_requests: 100, window_requests: 1 },
      { consecutive_failures: -0 },
    ]),
    ...of('load_balancing', [
      {},
      { algorithm: 'least_connections' },
      { algorithm: 'consistent_hash' },
      { algorithm: 'consistent_hash', hash_on: 'header', hash_key: 'X-User' },
      { algorithm: 'consistent_hash', hash_on: 'header' },
      { algorithm: 'consistent_hash', hash_on: 'cookie', hash_key: 'a b' },
      { algorithm: 'consistent_hash', hash_on: 'path', hash_key: 'x' },
      { algorithm: 'round_robin', hash_on: 'header', hash_key: 'x' },
      { algorithm: 'random' },
    ]),
    ...of('tls', [
      {},
      { verify: false },
      { verify: 'false' },
      { server_name: 'backend.internal' },
      { server_name: '10.0.0.1' },
      { server_name: 'Backend.Internal' },
      { server_name: 'a b' },
      { server_name: '' },
      { server_name: `${'a.'.repeat(126)}a` },
      { ca_certificates: null },
      { ca_certificates: '' },
      { ca_certificates: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' },
      { ca_certificates: 'x'.repeat(65_537) },
      { tls_verify_depth: 2 },
      { verify_depth: 0 },
      { verify_depth: 100 },
      { verify_depth: 101 },
      { verify_depth: -1 },
      { verify_depth: 1.5 },
      { verify_depth: '2' },
      { client_certificate_id: null },
      { client_certificate_id: '00000000-0000-4000-8000-000000000000' },
      { client_certificate_id: 'not-an-id' },
      null,
    ]),
    ...of('name', ['', ' a', 'a'.repeat(100), 'a'.repeat(101), '\u202e', 'e\u0301', '日本']),
  ];
}

export function apiKeyMutations(): RouteMutation[] {
  return [
    ...of('scopes', [
      [],
      ['a', 'a'],
      ['a', 'A'],
      [''],
      ['a b'],
      repeat(50, (i) => `s${i}`),
      repeat(51, (i) => `s${i}`),
    ]),
    ...of('expires_at', [
      null,
      '2020-01-01T00:00:00Z',
      '2999-01-01T00:00:00+14:00',
      '9999-12-31T23:59:59Z',
      '9999-12-31T23:59:59-01:00',
      '1970-01-01T00:00:00+01:00',
      '2030-02-30T00:00:00Z',
      '2030-12-31T23:59:60Z',
      '2030-01-01T00:00:00.123456789Z',
      '2030-01-01t00:00:00z',
      '2030-01-01',
      '',
    ]),
    ...of('quota', [
      { requests_per_day: 1 },
      { requests_per_day: 0 },
      { requests_per_month: 1_000_000_000_000 },
      { requests_per_month: 1_000_000_000_001 },
      { requests_per_day: 1.5 },
      { requests_per_day: 1e308 },
      {},
      null,
    ]),
    ...of('name', ['', 'a'.repeat(101), '\u2028']),
    ...of('metadata', [{ team: 'a' }]),
  ];
}
