import { describe, expect, it } from 'vitest';
import { clerkIssuerOf, issuerOfPublishableKey, namesClerkInstance } from './clerk-issuer.js';

const publishableKey = (kind: 'test' | 'live', frontendApi: string) =>
  `pk_${kind}_${Buffer.from(`${frontendApi}$`).toString('base64')}`;

describe('the issuer of a Clerk instance', () => {
  it('is https:// and the Frontend API its publishable key names', () => {
    expect(issuerOfPublishableKey(publishableKey('live', 'clerk.example.com'))).toBe(
      'https://clerk.example.com',
    );
    expect(issuerOfPublishableKey(publishableKey('test', 'happy-cat-12.clerk.accounts.dev'))).toBe(
      'https://happy-cat-12.clerk.accounts.dev',
    );
  });

  it('is unknown for a key that does not name a Frontend API', () => {
    expect(issuerOfPublishableKey('pk_test_unused')).toBeUndefined();
    expect(issuerOfPublishableKey(publishableKey('live', 'clerk.example.com/path'))).toBeUndefined();
    expect(issuerOfPublishableKey('sk_live_abc')).toBeUndefined();
  });

  it('is CLERK_ISSUER when set, over the publishable key', () => {
    expect(
      clerkIssuerOf({
        CLERK_ISSUER: 'https://clerk.other.example',
        CLERK_PUBLISHABLE_KEY: publishableKey('live', 'clerk.example.com'),
      }),
    ).toBe('https://clerk.other.example');
    expect(clerkIssuerOf({})).toBeUndefined();
  });
});

describe("a URL naming the platform's Clerk instance", () => {
  const issuer = 'https://happy-cat-12.clerk.accounts.dev';

  it('is one on its host, however the URL is spelled', () => {
    for (const value of [
      issuer,
      `${issuer}/`,
      'https://HAPPY-CAT-12.Clerk.Accounts.Dev',
      'https://happy-cat-12.clerk.accounts.dev:443/',
      'https://happy-cat-12.clerk.accounts.dev./',
      'https://happy-cat-12.clerk.accounts.dev../',
      'http://happy-cat-12.clerk.accounts.dev',
      'https://user@happy-cat-12.clerk.accounts.dev:8443',
      `${issuer}/.well-known/jwks.json`,
      'https://happy-cat-12.clerk.accounts%2Edev/',
      'happy-cat-12.clerk.accounts.dev',
    ]) {
      expect(namesClerkInstance(value, issuer), value).toBe(true);
    }
  });

  it('is not one on another host, nor text naming no host', () => {
    for (const value of [
      'https://other-cat-12.clerk.accounts.dev',
      'https://happy-cat-12.clerk.accounts.dev.example.com',
      'https://idp.example.com/happy-cat-12.clerk.accounts.dev',
      'urn:happy-cat-12.clerk.accounts.dev',
      'not a url',
    ]) {
      expect(namesClerkInstance(value, issuer), value).toBe(false);
    }
  });
});
