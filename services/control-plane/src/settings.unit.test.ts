import { createHash, generateKeyPairSync } from 'node:crypto';
import { platformBaseDomains } from '@vantageedge/shared/settings/common-settings';
import {
  DEV_API_KEY_PEPPER,
  DEV_CERTIFICATE_ENCRYPTION_KEY,
} from '@vantageedge/shared/settings/development-secrets';
import { parseSettings } from '@vantageedge/shared/settings/load-settings';
import { describe, expect, it } from 'vitest';
import { listenerOptionsFromSettings } from './http/listener.js';
import { assertControlPlaneSettings, controlPlaneSettings } from './settings.js';

const REQUIRED = { API_KEY_PEPPER: 'p'.repeat(32) };
const CLERK_JWT_KEY_PEM = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({
  type: 'spki',
  format: 'pem',
}) as string;

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

describe('RESERVED_SUBDOMAINS', () => {
  it('reserves the platform’s names by default; a list replaces them, `default` in it keeps them', () => {
    const defaults = parseSettings(controlPlaneSettings, REQUIRED).RESERVED_SUBDOMAINS;
    expect(defaults).toEqual(expect.arrayContaining(['www', 'api', 'admin', 'login', 'status', 'console']));
    const replaced = parseSettings(controlPlaneSettings, {
      ...REQUIRED,
      RESERVED_SUBDOMAINS: 'Shop, billing',
    });
    expect(replaced.RESERVED_SUBDOMAINS).toEqual(['shop', 'billing']);
    const extended = parseSettings(controlPlaneSettings, {
      ...REQUIRED,
      RESERVED_SUBDOMAINS: 'default,shop',
    });
    expect(extended.RESERVED_SUBDOMAINS).toEqual([...defaults, 'shop']);
  });

  it.each(['shop.example', 'under_score', '-dash', 'x'.repeat(64)])(
    'refuses RESERVED_SUBDOMAINS=%s naming it',
    (value) => {
      expect(() => parseSettings(controlPlaneSettings, { ...REQUIRED, RESERVED_SUBDOMAINS: value })).toThrow(
        /RESERVED_SUBDOMAINS/,
      );
    },
  );
});

describe('control-plane settings with make dev’s published secrets', () => {
  const CLERK = { CLERK_JWT_KEY: CLERK_JWT_KEY_PEM, CLERK_ISSUER: 'https://clerk.example.com' };
  const check = (env: Record<string, string>) =>
    assertControlPlaneSettings(parseSettings(controlPlaneSettings, { ...REQUIRED, ...CLERK, ...env }));
  const devKeyAsHex = Buffer.from(DEV_CERTIFICATE_ENCRYPTION_KEY, 'base64').toString('hex');

  it.each([
    ['API_KEY_PEPPER', { API_KEY_PEPPER: DEV_API_KEY_PEPPER }],
    ['CERTIFICATE_ENCRYPTION_KEY', { CERTIFICATE_ENCRYPTION_KEY: DEV_CERTIFICATE_ENCRYPTION_KEY }],
    ['CERTIFICATE_ENCRYPTION_KEY', { CERTIFICATE_ENCRYPTION_KEY: devKeyAsHex }],
  ])('refuses to start with the dev %s outside dev mode', (setting, env) => {
    expect(() => check(env)).toThrow(new RegExp(`${setting}: .*development`));
  });

  it('accepts them in dev mode (make dev), and other secrets anywhere', () => {
    const devSecrets = {
      API_KEY_PEPPER: DEV_API_KEY_PEPPER,
      CERTIFICATE_ENCRYPTION_KEY: DEV_CERTIFICATE_ENCRYPTION_KEY,
    };
    expect(() => check({ ...devSecrets, VANTAGEEDGE_DEV_MODE: 'true' })).not.toThrow();
    const ownKey = createHash('sha256').update('another key').digest('base64');
    expect(() => check({ CERTIFICATE_ENCRYPTION_KEY: ownKey })).not.toThrow();
  });
});

describe('control-plane CLERK_JWT_KEY', () => {
  it('refuses a PEM that is no public key at start-up (every sign-in would be answered 401)', () => {
    const truncated = '-----BEGIN PUBLIC KEY-----\\nMIIBIjANBgkq\\n-----END PUBLIC KEY-----';
    expect(() => parseSettings(controlPlaneSettings, { ...REQUIRED, CLERK_JWT_KEY: truncated })).toThrow(
      /CLERK_JWT_KEY: must be a PEM public key/,
    );
    const parsed = parseSettings(controlPlaneSettings, { ...REQUIRED, CLERK_JWT_KEY: CLERK_JWT_KEY_PEM });
    expect(parsed.CLERK_JWT_KEY).toBe(CLERK_JWT_KEY_PEM);
  });
});

describe('control-plane auth-failure limit and trusted proxies', () => {
  it('defaults to 60 rejected credentials a minute and no trusted proxy', () => {
    const parsed = parseSettings(controlPlaneSettings, REQUIRED);
    expect(parsed.CONTROL_PLANE_AUTH_FAILURES_PER_MINUTE).toBe(60);
    expect(parsed.CONTROL_PLANE_TRUSTED_PROXIES).toEqual([]);
  });

  it('takes CIDR ranges and refuses anything else at start-up', () => {
    const parsed = parseSettings(controlPlaneSettings, {
      ...REQUIRED,
      CONTROL_PLANE_TRUSTED_PROXIES: '10.0.0.0/8, fd00::/8',
    });
    expect(parsed.CONTROL_PLANE_TRUSTED_PROXIES).toEqual(['10.0.0.0/8', 'fd00::/8']);
    expect(() =>
      parseSettings(controlPlaneSettings, { ...REQUIRED, CONTROL_PLANE_TRUSTED_PROXIES: '10.0.0.0/33' }),
    ).toThrow(/CONTROL_PLANE_TRUSTED_PROXIES: must be a comma-separated list of CIDR ranges/);
    expect(() =>
      parseSettings(controlPlaneSettings, { ...REQUIRED, CONTROL_PLANE_AUTH_FAILURES_PER_MINUTE: '-1' }),
    ).toThrow(/CONTROL_PLANE_AUTH_FAILURES_PER_MINUTE/);
  });
});

describe('control-plane IPv6 client network', () => {
  it('counts an IPv6 client by its /64 unless CONTROL_PLANE_CLIENT_IPV6_PREFIX says 32 to 128', () => {
    expect(parseSettings(controlPlaneSettings, REQUIRED).CONTROL_PLANE_CLIENT_IPV6_PREFIX).toBe(64);
    const parsed = parseSettings(controlPlaneSettings, {
      ...REQUIRED,
      CONTROL_PLANE_CLIENT_IPV6_PREFIX: '48',
    });
    expect(parsed.CONTROL_PLANE_CLIENT_IPV6_PREFIX).toBe(48);
    for (const refused of ['31', '129', '56.5', 'wide'])
      expect(() =>
        parseSettings(controlPlaneSettings, { ...REQUIRED, CONTROL_PLANE_CLIENT_IPV6_PREFIX: refused }),
      ).toThrow(/CONTROL_PLANE_CLIENT_IPV6_PREFIX/);
    // The listener's per-client connection count takes it too.
    expect(listenerOptionsFromSettings(parsed).clientIpv6Prefix).toBe(48);
  });
});

describe('control-plane requests in flight', () => {
  it('default to 8 per caller, per tenant and per organisation, 16 of all but platform admins; 0 (off) is taken', () => {
    const parsed = parseSettings(controlPlaneSettings, REQUIRED);
    expect(parsed.CONTROL_PLANE_USER_REQUESTS_IN_FLIGHT).toBe(8);
    expect(parsed.CONTROL_PLANE_TENANT_REQUESTS_IN_FLIGHT).toBe(8);
    expect(parsed.CONTROL_PLANE_ORG_REQUESTS_IN_FLIGHT).toBe(8);
    expect(parsed.CONTROL_PLANE_REQUESTS_IN_FLIGHT).toBe(16);
    const off = parseSettings(controlPlaneSettings, {
      ...REQUIRED,
      CONTROL_PLANE_TENANT_REQUESTS_IN_FLIGHT: '0',
      CONTROL_PLANE_ORG_REQUESTS_IN_FLIGHT: '0',
    });
    expect(off.CONTROL_PLANE_TENANT_REQUESTS_IN_FLIGHT).toBe(0);
    expect(off.CONTROL_PLANE_ORG_REQUESTS_IN_FLIGHT).toBe(0);
  });

  it.each([
    ['CONTROL_PLANE_TENANT_REQUESTS_IN_FLIGHT', '-1'],
    ['CONTROL_PLANE_TENANT_REQUESTS_IN_FLIGHT', '1.5'],
    ['CONTROL_PLANE_TENANT_REQUESTS_IN_FLIGHT', 'lots'],
    ['CONTROL_PLANE_ORG_REQUESTS_IN_FLIGHT', '-1'],
    ['CONTROL_PLANE_ORG_REQUESTS_IN_FLIGHT', 'lots'],
    ['CONTROL_PLANE_REQUESTS_IN_FLIGHT', '-1'],
  ])('refuses %s=%s naming it', (name, value) => {
    expect(() => parseSettings(controlPlaneSettings, { ...REQUIRED, [name]: value })).toThrow(name);
  });

  it('hold 16 MiB of tenant documents by default; 0 (off) is taken, a negative budget refused naming it', () => {
    expect(parseSettings(controlPlaneSettings, REQUIRED).CONTROL_PLANE_DOCUMENT_BYTES_IN_FLIGHT).toBe(
      16_777_216,
    );
    const off = parseSettings(controlPlaneSettings, {
      ...REQUIRED,
      CONTROL_PLANE_DOCUMENT_BYTES_IN_FLIGHT: '0',
    });
    expect(off.CONTROL_PLANE_DOCUMENT_BYTES_IN_FLIGHT).toBe(0);
    expect(() =>
      parseSettings(controlPlaneSettings, { ...REQUIRED, CONTROL_PLANE_DOCUMENT_BYTES_IN_FLIGHT: '-1' }),
    ).toThrow(/CONTROL_PLANE_DOCUMENT_BYTES_IN_FLIGHT/);
  });
});

describe('CONTROL_PLANE_AUTHORIZED_PARTIES and CLERK_AUTHORIZED_PARTIES', () => {
  const CLERK = { CLERK_JWT_KEY: CLERK_JWT_KEY_PEM, CLERK_ISSUER: 'https://clerk.example.com' };
  const start = (env: Record<string, string>) =>
    assertControlPlaneSettings(parseSettings(controlPlaneSettings, { ...REQUIRED, ...CLERK, ...env }));

  it('takes origins as a browser sends them in Origin', () => {
    const config = parseSettings(controlPlaneSettings, {
      ...REQUIRED,
      CONTROL_PLANE_AUTHORIZED_PARTIES: 'https://admin.vantageedge.dev, http://localhost:5173',
      CLERK_AUTHORIZED_PARTIES: 'https://app.acme.example',
    });
    expect(config.CONTROL_PLANE_AUTHORIZED_PARTIES).toEqual([
      'https://admin.vantageedge.dev',
      'http://localhost:5173',
    ]);
    expect(config.CLERK_AUTHORIZED_PARTIES).toEqual(['https://app.acme.example']);
    expect(parseSettings(controlPlaneSettings, REQUIRED).CONTROL_PLANE_AUTHORIZED_PARTIES).toEqual([]);
  });

  // Clerk compares a token's azp with each entry as a string: any of these would refuse every token.
  it.each([
    'https://admin.vantageedge.dev/',
    'admin.vantageedge.dev',
    'https://admin.vantageedge.dev/console',
    'HTTPS://Admin.vantageedge.dev',
  ])('refuses %s naming the setting and the origin to write', (value) => {
    for (const setting of ['CONTROL_PLANE_AUTHORIZED_PARTIES', 'CLERK_AUTHORIZED_PARTIES']) {
      expect(() => parseSettings(controlPlaneSettings, { ...REQUIRED, [setting]: value })).toThrow(
        new RegExp(`${setting}: .*origin`),
      );
    }
  });

  // The gateways' list names the tenants' apps: the admin API taking it (or, without its own list, any
  // azp) would take a token a tenant's page script obtained for a platform admin visiting it.
  it("refuses to start with the gateways' list and none of its own, naming its own", () => {
    expect(() => start({ CLERK_AUTHORIZED_PARTIES: 'https://app.acme.example' })).toThrow(
      /CONTROL_PLANE_AUTHORIZED_PARTIES: is required/,
    );
    expect(() =>
      start({
        CLERK_AUTHORIZED_PARTIES: 'https://app.acme.example',
        CONTROL_PLANE_AUTHORIZED_PARTIES: 'https://admin.vantageedge.dev',
      }),
    ).not.toThrow();
    expect(() => start({})).not.toThrow();
  });
});

describe('CLERK_ISSUER', () => {
  const start = (env: Record<string, string>) =>
    assertControlPlaneSettings(
      parseSettings(controlPlaneSettings, { ...REQUIRED, CLERK_JWT_KEY: CLERK_JWT_KEY_PEM, ...env }),
    );
  // Clerk's publishable key for the instance whose Frontend API is clerk.example.com.
  const PUBLISHABLE_KEY = `pk_live_${Buffer.from('clerk.example.com$').toString('base64')}`;

  it('refuses to start with a JWT key and no issuer, rather than take any issuer', () => {
    expect(() => start({})).toThrow(/CLERK_ISSUER: is required/);
  });

  it('takes the issuer the publishable key names, or CLERK_ISSUER', () => {
    expect(() => start({ CLERK_PUBLISHABLE_KEY: PUBLISHABLE_KEY })).not.toThrow();
    expect(() => start({ CLERK_ISSUER: 'https://clerk.example.com' })).not.toThrow();
  });

  it.each(['clerk.example.com', 'https://clerk.example.com/', 'https://clerk.example.com/v1'])(
    'refuses CLERK_ISSUER=%s naming the form to write',
    (value) => {
      expect(() => start({ CLERK_ISSUER: value })).toThrow(/CLERK_ISSUER: .*Frontend API URL/);
    },
  );
});

describe('POSTGRES_STATEMENT_DEADLINE_MS', () => {
  const CLERK = { CLERK_JWT_KEY: CLERK_JWT_KEY_PEM, CLERK_ISSUER: 'https://clerk.example.com' };
  const start = (env: Record<string, string>) =>
    assertControlPlaneSettings(parseSettings(controlPlaneSettings, { ...REQUIRED, ...CLERK, ...env }));

  it('defaults to 45 s with 10 s of keepalive idle; 0 (off) is taken', () => {
    const parsed = parseSettings(controlPlaneSettings, REQUIRED);
    expect(parsed.POSTGRES_STATEMENT_DEADLINE_MS).toBe(45_000);
    expect(parsed.POSTGRES_KEEPALIVE_IDLE_MS).toBe(10_000);
    expect(() =>
      start({ POSTGRES_STATEMENT_DEADLINE_MS: '0', USAGE_QUERY_TIMEOUT_MS: '600000' }),
    ).not.toThrow();
  });

  it('refuses at start-up a deadline a read or a config change would meet while waiting on purpose', () => {
    expect(() => start({ POSTGRES_STATEMENT_DEADLINE_MS: '10000', USAGE_QUERY_TIMEOUT_MS: '20000' })).toThrow(
      /POSTGRES_STATEMENT_DEADLINE_MS: must be 0 or more than USAGE_QUERY_TIMEOUT_MS/,
    );
    expect(() => start({ POSTGRES_STATEMENT_DEADLINE_MS: '20000' })).toThrow(
      /POSTGRES_STATEMENT_DEADLINE_MS: must be 0 or more than the config change lock wait/,
    );
    expect(() =>
      parseSettings(controlPlaneSettings, { ...REQUIRED, POSTGRES_KEEPALIVE_IDLE_MS: '500' }),
    ).toThrow(/POSTGRES_KEEPALIVE_IDLE_MS/);
  });
});

describe('control-plane GATEWAY_REDIS_KEY_PREFIX', () => {
  it('refuses a prefix with a `{` (a Redis Cluster hash tag) as the gateways do, and takes one without', () => {
    expect(() =>
      parseSettings(controlPlaneSettings, { ...REQUIRED, GATEWAY_REDIS_KEY_PREFIX: 've{prod}:' }),
    ).toThrow(/GATEWAY_REDIS_KEY_PREFIX: .*\{/);
    expect(
      parseSettings(controlPlaneSettings, { ...REQUIRED, GATEWAY_REDIS_KEY_PREFIX: 've-prod:' })
        .GATEWAY_REDIS_KEY_PREFIX,
    ).toBe('ve-prod:');
  });
});
