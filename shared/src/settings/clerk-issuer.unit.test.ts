import { describe, expect, it } from 'vitest';
import { clerkIssuerOf, issuerOfPublishableKey } from './clerk-issuer.js';

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
