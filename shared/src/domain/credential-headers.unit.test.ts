import { describe, expect, it } from 'vitest';
import {
  isCredentialHeader,
  REDACTED_VALUE,
  redactedCredentialHeaders,
  redactedHeaderTransform,
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
      redactedCredentialHeaders({ routes: [{ request_headers: transform, response_headers: transform }] }),
    ).toEqual({
      routes: [{ request_headers: redactedHeaderTransform(transform), response_headers: transform }],
    });
  });
});
