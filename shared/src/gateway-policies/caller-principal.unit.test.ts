import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  apiKeyPrincipal,
  clerkUserPrincipal,
  oidcIssuerDigest,
  oidcUserPrincipal,
  servicePrincipal,
} from './caller-principal.js';

describe('caller principals', () => {
  // The formats are where per-caller cache entries, rate-limit buckets and usage live: pinned here.
  it('qualifies each caller by who vouched for it, in the formats the gateway keys on', () => {
    expect(clerkUserPrincipal('user_2abc')).toBe('clerk:user_2abc');
    expect(servicePrincipal('billing')).toBe('svc:billing');
    expect(apiKeyPrincipal('5eef127c-37b0-4801-810d-2e9bc914962d')).toBe(
      'key:5eef127c-37b0-4801-810d-2e9bc914962d',
    );
    expect(oidcIssuerDigest('https://idp.example.test')).toBe('0s7pjojaNDqlJ5ql');
    expect(oidcUserPrincipal('https://idp.example.test', 'user_2abc')).toBe(
      'oidc:0s7pjojaNDqlJ5ql:user_2abc',
    );
  });

  it('digests the issuer as the first 16 characters of its base64url SHA-256', () => {
    const issuer = 'https://tenant.example:8443/realms/a:b';
    const digest = createHash('sha256').update(issuer).digest('base64url').slice(0, 16);
    expect(oidcUserPrincipal(issuer, 's')).toBe(`oidc:${digest}:s`);
  });

  it('never gives the same id of different callers one principal, nor one an anonymous address has', () => {
    const id = 'user_2same';
    const principals = [
      clerkUserPrincipal(id),
      oidcUserPrincipal('https://a.example', id),
      oidcUserPrincipal('https://b.example', id),
      servicePrincipal(id),
      apiKeyPrincipal(id),
    ];
    expect(new Set(principals).size).toBe(principals.length);
    for (const principal of [...principals, oidcUserPrincipal('https://a.example', 'anon-ip:10.0.0.1')])
      expect(principal.startsWith('anon-ip:')).toBe(false);
  });
});
