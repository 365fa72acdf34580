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
