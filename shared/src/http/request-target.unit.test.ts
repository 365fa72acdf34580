import { describe, expect, it } from 'vitest';
import { LOGGED_PATH_MAX, loggedPath } from '../observability/logged-path.js';
import { pathWithoutCredentialParameters, targetWithoutCredentials } from './request-target.js';

describe('credential path parameters', () => {
  it('redacts the value of a `;` parameter named as a credential, in any case or escape, and keeps the rest', () => {
    expect(pathWithoutCredentialParameters('/cart;jsessionid=ABC123/items;page=2')).toBe(
      '/cart;jsessionid=<redacted>/items;page=2',
    );
    expect(pathWithoutCredentialParameters('/a;lang=en;JSESSIONID=ABC;v=1')).toBe(
      '/a;lang=en;JSESSIONID=<redacted>;v=1',
    );
    expect(pathWithoutCredentialParameters('/a;jsess%69onid=ABC;api_key=K;token=T')).toBe(
      '/a;jsess%69onid=<redacted>;api_key=<redacted>;token=<redacted>',
    );
    expect(pathWithoutCredentialParameters('/a;x=%;keyword=k;session')).toBe('/a;x=%;keyword=k;session');
    const plain = '/api/orders/7';
    expect(pathWithoutCredentialParameters(plain)).toBe(plain);
  });

  it('are redacted in the target the spans show and in the path a log line carries, a cut one too', () => {
    expect(targetWithoutCredentials('/cart;jsessionid=ABC?access_token=T')).toBe(
      '/cart;jsessionid=<redacted>',
    );
    expect(targetWithoutCredentials('http://u:p@host/cart;jsessionid=ABC')).toBe(
      'http://host/cart;jsessionid=<redacted>',
    );
    expect(loggedPath('/cart;jsessionid=ABC')).toBe('/cart;jsessionid=<redacted>');
    const long = `/${'a'.repeat(LOGGED_PATH_MAX - 20)};jsessionid=${'S'.repeat(100)}`;
    expect(loggedPath(long)).toBe(`/${'a'.repeat(LOGGED_PATH_MAX - 20)};jsessionid=<redacted>…`);
  });
});
