import { SettingsError } from '@vantageedge/shared/settings/load-settings';
import { describe, expect, it } from 'vitest';
import { parseGatewaySettings } from '../settings.js';

const parse = (env: Record<string, string>) =>
  parseGatewaySettings({ API_KEY_PEPPER: 'p'.repeat(32), ...env });

describe('GATEWAY_CACHE_TENANT_MAX_BYTES', () => {
  it('defaults to 256 MiB per tenant and takes a value within 1 KiB..4 GiB', () => {
    expect(parse({}).GATEWAY_CACHE_TENANT_MAX_BYTES).toBe(256 * 1024 * 1024);
    expect(parse({ GATEWAY_CACHE_TENANT_MAX_BYTES: '1048576' }).GATEWAY_CACHE_TENANT_MAX_BYTES).toBe(
      1_048_576,
    );
  });

  it.each(['0', '1023', String(4 * 1024 * 1024 * 1024 + 1), '1.5', 'lots'])('refuses %s', (value) => {
    expect(() => parse({ GATEWAY_CACHE_TENANT_MAX_BYTES: value })).toThrow(SettingsError);
  });
});

describe('the store-call shares (GATEWAY_CACHE_STORE_TENANT_* and GATEWAY_CACHE_STORE_BYTES_IN_FLIGHT)', () => {
  it('default to 16 calls, 4 MiB, 64 waiting per tenant and 8 MiB for every tenant together', () => {
    const settings = parse({});
    expect(settings.GATEWAY_CACHE_STORE_TENANT_CALLS).toBe(16);
    expect(settings.GATEWAY_CACHE_STORE_TENANT_BYTES).toBe(4 * 1024 * 1024);
    expect(settings.GATEWAY_CACHE_STORE_TENANT_QUEUE).toBe(64);
    expect(settings.GATEWAY_CACHE_STORE_BYTES_IN_FLIGHT).toBe(8 * 1024 * 1024);
  });

  it('take values of their own', () => {
    const settings = parse({
      GATEWAY_CACHE_STORE_TENANT_CALLS: '4',
      GATEWAY_CACHE_STORE_TENANT_BYTES: '1048576',
      GATEWAY_CACHE_STORE_TENANT_QUEUE: '0',
      GATEWAY_CACHE_STORE_BYTES_IN_FLIGHT: '33554432',
    });
    expect(settings.GATEWAY_CACHE_STORE_TENANT_CALLS).toBe(4);
    expect(settings.GATEWAY_CACHE_STORE_TENANT_BYTES).toBe(1_048_576);
    expect(settings.GATEWAY_CACHE_STORE_TENANT_QUEUE).toBe(0);
    expect(settings.GATEWAY_CACHE_STORE_BYTES_IN_FLIGHT).toBe(33_554_432);
  });

  it.each([
    ['GATEWAY_CACHE_STORE_TENANT_CALLS', '0'],
    ['GATEWAY_CACHE_STORE_TENANT_CALLS', '2.5'],
    ['GATEWAY_CACHE_STORE_TENANT_BYTES', '100'],
    ['GATEWAY_CACHE_STORE_TENANT_QUEUE', '-1'],
    ['GATEWAY_CACHE_STORE_BYTES_IN_FLIGHT', 'lots'],
  ])('refuses %s=%s, naming it', (setting, value) => {
    expect(() => parse({ [setting]: value })).toThrow(new RegExp(setting));
  });

  it('refuses a replica bound below one tenant’s bytes, naming it', () => {
    expect(() =>
      parse({ GATEWAY_CACHE_STORE_TENANT_BYTES: '8388608', GATEWAY_CACHE_STORE_BYTES_IN_FLIGHT: '4194304' }),
    ).toThrow(/GATEWAY_CACHE_STORE_BYTES_IN_FLIGHT: must be at least GATEWAY_CACHE_STORE_TENANT_BYTES/);
  });
});
