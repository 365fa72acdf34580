import { describe, expect, it } from 'vitest';
import type { CompiledTenant } from '../config/compiled-tenant.js';
import { CookieDomainGuard } from './cookie-domains.js';

/** Regression tests for origin cookies scoped to the platform's base domain (every tenant's hosts). */
describe('CookieDomainGuard', () => {
  const tenant = {
    id: 'acme',
    hostNames: ['acme.vantageedge.dev', 'acme.localhost', 'acme.example', 'api.acme.example'],
  };
  /** Every host the tenant's snapshot names is the tenant's on this replica, but `heldByOthers`. */
  const holders = (heldByOthers: readonly string[] = []) => ({
    resolveHost: (host: string | undefined) =>
      host !== undefined && tenant.hostNames.includes(host) && !heldByOthers.includes(host)
        ? (tenant as unknown as CompiledTenant)
        : undefined,
  });
  const guard = new CookieDomainGuard(['vantageedge.dev', 'localhost'], holders());
  const scope = (cookie: string | string[], host: string) =>
    guard.scope(cookie, host, tenant as unknown as CompiledTenant);

  it.each([
    ['a=1; Domain=vantageedge.dev', 'acme.vantageedge.dev', 'a=1'],
    ['a=1; Domain=dev', 'acme.vantageedge.dev', 'a=1'], // a parent of a base domain
    ['a=1; Domain=ACME.vantageedge.dev.', 'acme.vantageedge.dev:443', 'a=1; Domain=ACME.vantageedge.dev.'],
    ['a=1; domain=acme.example; Domain=example', 'api.acme.example', 'a=1; domain=acme.example'],
    ['a=1; Domain=', 'acme.localhost', 'a=1; Domain='],
    ['a=domain=x; Path=/', 'acme.localhost', 'a=domain=x; Path=/'],
    ['a=1;Domain=localhost;Secure', 'acme.localhost', 'a=1;Secure'],
  ])('%s on %s → %s', (cookie, host, expected) => {
    expect(scope(cookie, host)).toBe(expected);
  });

  it('never keeps a base domain even when a tenant claims it as a host', () => {
    const claiming = { id: 'claiming', hostNames: ['localhost'] } as unknown as CompiledTenant;
    const claimed = new CookieDomainGuard(['localhost'], { resolveHost: () => claiming });
    expect(claimed.scope('a=1; Domain=localhost', 'localhost', claiming)).toBe('a=1');
  });

  it('regression: removes a parent domain the tenant’s snapshot still names but another tenant holds', () => {
    // The domain moved to another tenant (or that tenant won a double claim): a cookie for it would
    // reach the other tenant's hosts.
    const moved = new CookieDomainGuard(['vantageedge.dev', 'localhost'], holders(['acme.example']));
    const cookie = 'a=1; Domain=acme.example; Path=/';
    expect(moved.scope(cookie, 'api.acme.example', tenant as unknown as CompiledTenant)).toBe('a=1; Path=/');
  });
});
