import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ControlPlaneHarness,
  PLATFORM_ADMIN,
  startControlPlane,
} from '../testing/control-plane-harness.js';

/**
 * How the admin API reads `Authorization` (RFC 9110 §11.1, RFC 6750 §2.1): the scheme's name in any
 * case, then one token; anything after the token makes the credentials malformed, never ignored.
 */
let cp: ControlPlaneHarness;
let admin: string;

beforeAll(async () => {
  cp = await startControlPlane();
  admin = await cp.token({ userId: PLATFORM_ADMIN });
});
afterAll(async () => {
  await cp?.close();
});

/** A create with an empty body: 400 once the caller is known, 401 before. */
const createNothing = (authorization: string) =>
  cp.request('POST', '/api/v1/tenants', { token: null, headers: { authorization }, body: {} });

describe('the Authorization header', () => {
  it.each([
    ['Bearer', (token: string) => `Bearer ${token}`],
    ['bearer in lower case', (token: string) => `bearer ${token}`],
    ['BEARER in capitals, two spaces', (token: string) => `BEARER  ${token}`],
  ])('takes the token after the scheme: %s', async (_case, header) => {
    const answer = await createNothing(header(admin));
    expect(answer.status, JSON.stringify(answer.body)).toBe(400);
    expect(answer.body).toMatchObject({ error: { code: 'validation_failed' } });
  });

  it.each([
    ['a second word after the token', (token: string) => `Bearer ${token} extra`],
    ['another scheme after it', (token: string) => `Bearer ${token}, Basic dXNlcjpwYXNz`],
    ['another scheme', (token: string) => `Basic ${token}`],
  ])('refuses credentials that are not one bearer token: %s', async (_case, header) => {
    const answer = await createNothing(header(admin));
    expect(answer.status).toBe(401);
    expect(answer.headers.get('www-authenticate')).toBe('Bearer');
    expect(answer.body).toMatchObject({
      error: { code: 'unauthenticated', details: [{ field: 'authorization' }] },
    });
  });
});
