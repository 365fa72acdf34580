import { describe, expect, it } from 'vitest';
import { createOriginBody, updateOriginBody, updateRouteBody, updateTenantBody } from './requests.js';

const origin = {
  tenant_id: '00000000-0000-4000-8000-000000000001',
  name: 'api',
  url: 'https://api.example.com',
};

function issuesOf(result: {
  success: boolean;
  error?: { issues: Array<{ path: PropertyKey[]; message: string }> };
}) {
  return (result.error?.issues ?? []).map((issue) => `${issue.path.join('.')}: ${issue.message}`);
}

describe('an origin hashing on a header or cookie', () => {
  it('is refused a hash_key that no request can carry as that header or cookie, naming the field', () => {
    for (const [hash_on, hash_key] of [
      ['header', 'x user'],
      ['header', 'x-user:'],
      ['cookie', 'session;id'],
      ['cookie', 'a=b'],
    ] as const) {
      const load_balancing = { algorithm: 'consistent_hash', hash_on, hash_key };
      const created = createOriginBody.safeParse({ ...origin, load_balancing });
      expect(created.success, `${hash_on} ${hash_key}`).toBe(false);
      expect(issuesOf(created)).toEqual([
        `load_balancing.hash_key: must be a ${hash_on} name (letters, digits and !#$%&'*+-.^_\`|~)`,
      ]);
      expect(updateOriginBody.safeParse({ load_balancing }).success).toBe(false);
    }
  });

  // Regression: a hash_key kept while another algorithm runs (CR/LF, controls) was stored, shown to
  // admins, and read as soon as the origin switched to hashing on it.
  it('is refused a hash_key that is no header or cookie name while it goes unused, naming the field', () => {
    for (const load_balancing of [
      { algorithm: 'round_robin', hash_key: 'x\r\nInjected: 1' },
      { algorithm: 'consistent_hash', hash_on: 'client_ip', hash_key: 'x\u001b[2J' },
    ]) {
      const created = createOriginBody.safeParse({ ...origin, load_balancing });
      expect(issuesOf(created)).toEqual([
        "load_balancing.hash_key: must be a header or cookie name (letters, digits and !#$%&'*+-.^_`|~)",
      ]);
      expect(updateOriginBody.safeParse({ load_balancing }).success).toBe(false);
    }
  });

  // Regression: the hash read the client's copy of such a header while the origin saw the gateway's, so
  // a client chose its target with any X-Real-IP it wrote, where the tenant meant its address.
  it('is refused a hash_key header the gateway writes for the origin, in any spelling, naming the field', () => {
    for (const hash_key of ['X-Real-IP', 'x_forwarded_for', 'x-vantageedge-user-id', 'X-Request-Id']) {
      const load_balancing = { algorithm: 'consistent_hash', hash_on: 'header', hash_key };
      const created = createOriginBody.safeParse({ ...origin, load_balancing });
      expect(created.success, hash_key).toBe(false);
      expect(issuesOf(created).map((issue) => issue.split(':')[0])).toEqual(['load_balancing.hash_key']);
      expect(updateOriginBody.safeParse({ load_balancing }).success, hash_key).toBe(false);
    }
    // A cookie of that name is the client's own.
    const load_balancing = { algorithm: 'consistent_hash', hash_on: 'cookie', hash_key: 'x-real-ip' };
    expect(issuesOf(createOriginBody.safeParse({ ...origin, load_balancing }))).toEqual([]);
  });

  // Regression: the hash read a header no request through node:http carries (it drops `__proto__`), so
  // every client hashed on its address over HTTP/1.1 and on the header over HTTP/2.
  it('is refused the header __proto__ in any case, naming the field; a cookie of that name is taken', () => {
    for (const hash_key of ['__proto__', '__Proto__']) {
      const load_balancing = { algorithm: 'consistent_hash', hash_on: 'header', hash_key };
      expect(issuesOf(createOriginBody.safeParse({ ...origin, load_balancing }))).toEqual([
        `load_balancing.hash_key: ${PROTO_REFUSED}`,
      ]);
      expect(updateOriginBody.safeParse({ load_balancing }).success).toBe(false);
    }
    const load_balancing = { algorithm: 'consistent_hash', hash_on: 'cookie', hash_key: '__proto__' };
    expect(issuesOf(createOriginBody.safeParse({ ...origin, load_balancing }))).toEqual([]);
  });

  it('takes a header or cookie name', () => {
    for (const [hash_on, hash_key] of [
      ['header', 'X-User-Id'],
      ['cookie', '__Host-session'],
    ] as const) {
      const load_balancing = { algorithm: 'consistent_hash', hash_on, hash_key };
      expect(issuesOf(createOriginBody.safeParse({ ...origin, load_balancing }))).toEqual([]);
    }
  });
});

const PROTO_REFUSED =
  "is __proto__, a header name no request or answer through the gateway carries (node:http drops it from HTTP/1.1 requests, the gateway from origins' answers)";

// Regression: a cache policy took `__proto__` as a header name, which no request or answer through the
// gateway carries: the key never varied on it, the bypass never applied, the tag never read.
describe('a cache policy naming the header __proto__', () => {
  const policy = (fields: object) => ({ cache_key_pattern: 'path+query+headers', ...fields });

  it('is refused in any case, naming the field', () => {
    for (const [field, fields] of [
      ['vary_headers.1', { vary_headers: ['accept-language', '__proto__'] }],
      ['bypass.headers.0', { bypass: { headers: ['__PROTO__'] } }],
      ['tag_headers.0', { tag_headers: ['__Proto__'] }],
    ] as const) {
      const parsed = updateRouteBody.safeParse({ cache_policy: policy(fields) });
      expect(issuesOf(parsed)).toEqual([`cache_policy.${field}: ${PROTO_REFUSED}`]);
    }
  });

  it('takes constructor and prototype, which clients send and gateways read as sent', () => {
    const fields = { vary_headers: ['constructor'], bypass: { headers: ['prototype'] } };
    expect(issuesOf(updateRouteBody.safeParse({ cache_policy: policy(fields) }))).toEqual([]);
  });
});

describe("a tenant's OIDC provider", () => {
  const oidc = {
    issuer: 'https://id.example.com/',
    audience: 'api',
    jwks_url: 'https://id.example.com/jwks',
  };

  it('is refused an issuer, audience or key set URL over 2,048 characters, naming the field', () => {
    const long = 'x'.repeat(2049);
    for (const [field, value] of [
      ['issuer', `https://id.example.com/${long}`],
      ['audience', long],
      ['jwks_url', `https://id.example.com/${long}`],
    ] as const) {
      const result = updateTenantBody.safeParse({ settings: { oidc: { ...oidc, [field]: value } } });
      expect(issuesOf(result)).toEqual([`settings.oidc.${field}: must be at most 2048 characters`]);
    }
    expect(issuesOf(updateTenantBody.safeParse({ settings: { oidc } }))).toEqual([]);
  });

  // Regression: never met by a token, and shown to admins as written (escape sequences included).
  it('is refused an issuer or audience with control characters, naming the field', () => {
    for (const [field, value] of [
      ['issuer', 'https://id.example.com/\r\nx'],
      ['audience', 'api\u001b[2J'],
      ['audience', 'api\u0085'],
    ] as const) {
      const result = updateTenantBody.safeParse({ settings: { oidc: { ...oidc, [field]: value } } });
      expect(issuesOf(result)).toEqual([`settings.oidc.${field}: must not contain control characters`]);
    }
  });
});
