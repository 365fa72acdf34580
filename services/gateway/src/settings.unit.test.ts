import { generateKeyPairSync } from 'node:crypto';
import {
  DEV_API_KEY_PEPPER,
  DEV_CERTIFICATE_ENCRYPTION_KEY,
} from '@vantageedge/shared/settings/development-secrets';
import { describe, expect, it } from 'vitest';
import { parseGatewaySettings } from './settings.js';

describe('gateway settings with make dev’s published secrets', () => {
  const OWN_PEPPER = { API_KEY_PEPPER: 'p'.repeat(32) };

  it.each([
    ['API_KEY_PEPPER', { API_KEY_PEPPER: DEV_API_KEY_PEPPER }],
    [
      'CERTIFICATE_ENCRYPTION_KEY',
      { ...OWN_PEPPER, CERTIFICATE_ENCRYPTION_KEY: DEV_CERTIFICATE_ENCRYPTION_KEY },
    ],
  ])('refuses to start with the dev %s outside dev mode', (setting, env) => {
    expect(() => parseGatewaySettings(env)).toThrow(new RegExp(`${setting}: .*development`));
  });

  it('accepts them in dev mode (make dev)', () => {
    const env = {
      API_KEY_PEPPER: DEV_API_KEY_PEPPER,
      CERTIFICATE_ENCRYPTION_KEY: DEV_CERTIFICATE_ENCRYPTION_KEY,
      VANTAGEEDGE_DEV_MODE: 'true',
    };
    expect(() => parseGatewaySettings(env)).not.toThrow();
  });
});

describe('gateway settings given a blank value', () => {
  it('refuses it instead of reading 0 (GATEWAY_AUTH_FAILURES_PER_MINUTE=0 turns the limit off)', () => {
    expect(() =>
      parseGatewaySettings({ API_KEY_PEPPER: 'p'.repeat(32), GATEWAY_AUTH_FAILURES_PER_MINUTE: ' ' }),
    ).toThrow(/GATEWAY_AUTH_FAILURES_PER_MINUTE: is blank/);
  });
});

describe('gateway CLERK_JWT_KEY', () => {
  const REQUIRED = { API_KEY_PEPPER: 'p'.repeat(32) };

  it.each(['not a key', '-----BEGIN PUBLIC KEY-----\\nMIIBIjANBgkq\\n-----END PUBLIC KEY-----'])(
    'refuses %j at start-up (every Clerk token would be answered 401)',
    (value) => {
      expect(() => parseGatewaySettings({ ...REQUIRED, CLERK_JWT_KEY: value })).toThrow(/CLERK_JWT_KEY: /);
    },
  );

  it('takes a PEM public key, line breaks written as \\n or not', () => {
    const pem = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({
      type: 'spki',
      format: 'pem',
    }) as string;
    for (const value of [pem, pem.replaceAll('\n', '\\n')])
      expect(parseGatewaySettings({ ...REQUIRED, CLERK_JWT_KEY: value }).CLERK_JWT_KEY).toBe(pem);
  });
});
