import { platformBaseDomains } from '@vantageedge/shared/settings/common-settings';
import { parseSettings } from '@vantageedge/shared/settings/load-settings';
import { describe, expect, it } from 'vitest';
import { controlPlaneSettings } from './settings.js';

const REQUIRED = { API_KEY_PEPPER: 'p'.repeat(32) };

describe('control-plane settings for custom domains', () => {
  it('takes DNS_RESOLVER as ip or ip:port servers, and the shared base domains', () => {
    const config = parseSettings(controlPlaneSettings, {
      ...REQUIRED,
      DNS_RESOLVER: '127.0.0.1:5353, 10.0.0.2, ::1, [::1]:53',
      PLATFORM_BASE_DOMAINS: 'edge.example',
    });
    expect(config.DNS_RESOLVER).toEqual(['127.0.0.1:5353', '10.0.0.2', '::1', '[::1]:53']);
    expect(platformBaseDomains(config)).toEqual(['edge.example']);
    expect(parseSettings(controlPlaneSettings, REQUIRED).DNS_RESOLVER).toBeUndefined();
  });

  it.each(['dns.google', '127.0.0.1:99999', 'udp://127.0.0.1:53', '1.2.3.4:'])(
    'refuses DNS_RESOLVER=%s naming it',
    (value) => {
      expect(() => parseSettings(controlPlaneSettings, { ...REQUIRED, DNS_RESOLVER: value })).toThrow(
        /DNS_RESOLVER/,
      );
    },
  );
});
