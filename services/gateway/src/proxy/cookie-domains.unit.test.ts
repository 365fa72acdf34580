import { describe, expect, it } from 'vitest';
import type { CompiledTenant } from '../config/compiled-tenant.js';
import { CookieDomainGuard } from './cookie-domains.js';

/** Regression tests for origin cookies scoped to the platform's base domain (every tenant's hosts). */
describe('CookieDomainGuard', () => {
  const guard = new CookieDomainGuard(['vantageedge.dev', 'localhost']);
  const tenant = {
    hostNames: ['acme.vantageedge.dev', 'acme.localhost', 'acme.example', 'api.acme.example'],
  };
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
    const claiming = { hostNames: ['localhost'] } as unknown as CompiledTenant;
    expect(guard.scope('a=1; Domain=localhost', 'localhost', claiming)).toBe('a=1');
  });
});
