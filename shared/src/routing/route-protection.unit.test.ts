import { describe, expect, it } from 'vitest';
import { ProtectionKeys, protectsAtLeastAsMuch, uniformProtection } from './route-protection.js';

const p = (auth_mode: string, required_scopes: string[] = [], require_tenant_org = true) =>
  ({ auth_mode, required_scopes, require_tenant_org }) as Parameters<typeof protectsAtLeastAsMuch>[0];

/** uniformProtection of routes as the matcher keys them. */
const uniform = (routes: Parameters<typeof protectsAtLeastAsMuch>[0][]) => {
  const keys = new ProtectionKeys();
  return uniformProtection(routes.map((route) => keys.of(route)));
};

describe('protectsAtLeastAsMuch', () => {
  it.each([
    [p('apikey_required'), p('public'), true],
    [p('public'), p('apikey_required'), false],
    [p('jwt_required'), p('jwt_or_apikey'), true],
    [p('apikey_required'), p('jwt_or_apikey'), true],
    [p('jwt_or_apikey'), p('jwt_required'), false],
    [p('jwt_required'), p('apikey_required'), false],
    [p('service'), p('jwt_required'), false],
    [p('apikey_required', ['a', 'b']), p('apikey_required', ['a']), true],
    [p('apikey_required', ['a']), p('apikey_required', ['a', 'b']), false],
    [p('jwt_required', [], false), p('jwt_required', [], true), false],
    [p('jwt_required', [], true), p('jwt_required', [], false), true],
  ])('%j over %j: %s', (a, b, expected) => {
    expect(protectsAtLeastAsMuch(a, b)).toBe(expected);
  });

  it('knows when all routes are alike', () => {
    expect(uniform([p('public'), p('public')])).toBe(true);
    expect(uniform([p('public'), p('jwt_required')])).toBe(false);
    expect(uniform([])).toBe(true);
  });

  // Regression: only authentication counted, so /api/Admin/users (an Express origin's /api/admin/users)
  // was handled by the public /api/* route instead of /api/admin/*, whose IP allow list it escaped, and
  // /api/Users/1 escaped the per-IP limit of /api/users/*.
  it('counts IP rules and rate limits: a route without them never covers one with them', () => {
    const allowList = { allow: ['10.0.0.0/8'], deny: [] } as never;
    const limit = { algorithm: 'token_bucket', requests_per_second: 1, burst: 1, scope: 'ip' } as never;
    const open = p('public');
    const guarded = { ...p('public'), ip_rules: allowList };
    const limited = { ...p('public'), rate_limit: limit };
    expect(protectsAtLeastAsMuch(open, guarded)).toBe(false);
    expect(protectsAtLeastAsMuch(guarded, open)).toBe(true);
    expect(protectsAtLeastAsMuch(open, limited)).toBe(false);
    expect(protectsAtLeastAsMuch(limited, open)).toBe(true);
    expect(protectsAtLeastAsMuch({ ...guarded }, guarded)).toBe(true);
    expect(protectsAtLeastAsMuch(guarded, limited)).toBe(false);
    expect(uniform([open, guarded])).toBe(false);
    expect(uniform([open, limited])).toBe(false);
  });

  // Regression: two routes with limits written alike counted as one protection, so a reading of
  // /api/users/1 that /api/* matched (/api/Users/1) spent /api/*'s counter, not /api/users/*'s.
  it('takes a rate limit as the same protection only on the same route: each route counts on its own', () => {
    const limit = () =>
      ({ algorithm: 'token_bucket', requests_per_second: 1, burst: 1, scope: 'ip' }) as never;
    const users = { ...p('public'), id: 'users', rate_limit: limit() };
    const all = { ...p('public'), id: 'all', rate_limit: limit() };
    expect(protectsAtLeastAsMuch(users, all)).toBe(false);
    expect(protectsAtLeastAsMuch(all, users)).toBe(false);
    expect(protectsAtLeastAsMuch(users, { ...users })).toBe(true);
    expect(uniform([users, all])).toBe(false);
  });

  it('puts a route of the tenant’s own users above one open to any Clerk user, and a self-answering route above one that forwards', () => {
    const anyUser = { ...p('jwt_required'), allow_any_authenticated_user: true };
    const members = p('jwt_required');
    expect(protectsAtLeastAsMuch(members, anyUser)).toBe(true);
    expect(protectsAtLeastAsMuch(anyUser, members)).toBe(false);
    expect(protectsAtLeastAsMuch(anyUser, { ...anyUser })).toBe(true);
    expect(uniform([anyUser, members])).toBe(false);
    // An API key route reads no Clerk token: the flag changes nothing there.
    expect(
      protectsAtLeastAsMuch(
        { ...p('apikey_required'), allow_any_authenticated_user: true },
        p('apikey_required'),
      ),
    ).toBe(true);
    const block = { ...p('public'), fixed_response: { status: 403, headers: {} } as never };
    const forwarding = p('public');
    expect(protectsAtLeastAsMuch(block, forwarding)).toBe(true);
    expect(protectsAtLeastAsMuch(forwarding, block)).toBe(false);
    expect(protectsAtLeastAsMuch(p('apikey_required'), block)).toBe(false);
    expect(uniform([block, forwarding])).toBe(false);
  });

  it('puts a route without CORS above one that lets other sites read it, and refuses to order two lists of sites', () => {
    const partner = { ...p('public'), cors: { allow_origins: ['https://partner.example'] } as never };
    const others = { ...p('public'), cors: { allow_origins: ['https://other.example'] } as never };
    const none = p('public');
    expect(protectsAtLeastAsMuch(none, partner)).toBe(true);
    expect(protectsAtLeastAsMuch(partner, none)).toBe(false);
    expect(protectsAtLeastAsMuch(partner, others)).toBe(false);
    expect(protectsAtLeastAsMuch(others, partner)).toBe(false);
    expect(
      protectsAtLeastAsMuch(partner, {
        ...partner,
        cors: { allow_origins: ['https://partner.example'] } as never,
      }),
    ).toBe(true);
    expect(uniform([none, partner])).toBe(false);
  });
});
