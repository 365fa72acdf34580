import { generateKeyPairSync } from 'node:crypto';
import {
  DEV_API_KEY_PEPPER,
  DEV_CERTIFICATE_ENCRYPTION_KEY,
} from '@vantageedge/shared/settings/development-secrets';
import { describe, expect, it } from 'vitest';
import {
  parseGatewaySettings,
  upstreamRequestsPerTenant,
  webSocketCredentialGraceMs,
  webSocketsPerTenant,
} from './settings.js';

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

describe('gateway admin listener opened beyond loopback', () => {
  const REQUIRED = { API_KEY_PEPPER: 'p'.repeat(32) };

  // /status names every tenant this replica serves, its subdomain and custom domains.
  it.each(['0.0.0.0', '::', '10.0.0.5', 'gateway-a.internal'])(
    'refuses GATEWAY_ADMIN_HOST=%s without GATEWAY_ADMIN_TOKEN, naming the token',
    (host) => {
      expect(() => parseGatewaySettings({ ...REQUIRED, GATEWAY_ADMIN_HOST: host })).toThrow(
        /GATEWAY_ADMIN_TOKEN: is required when GATEWAY_ADMIN_HOST/,
      );
    },
  );

  it('is also refused in dev mode (the token is what guards /status, whoever runs it)', () => {
    expect(() =>
      parseGatewaySettings({ ...REQUIRED, GATEWAY_ADMIN_HOST: '0.0.0.0', VANTAGEEDGE_DEV_MODE: 'true' }),
    ).toThrow(/GATEWAY_ADMIN_TOKEN/);
  });

  it('starts with a token, or on a loopback address without one', () => {
    const token = { GATEWAY_ADMIN_TOKEN: 't'.repeat(16) };
    expect(
      parseGatewaySettings({ ...REQUIRED, ...token, GATEWAY_ADMIN_HOST: '0.0.0.0' }).GATEWAY_ADMIN_HOST,
    ).toBe('0.0.0.0');
    for (const host of ['127.0.0.1', '127.0.0.2', '::1', 'localhost'])
      expect(parseGatewaySettings({ ...REQUIRED, GATEWAY_ADMIN_HOST: host }).GATEWAY_ADMIN_HOST).toBe(host);
    expect(parseGatewaySettings(REQUIRED).GATEWAY_ADMIN_HOST).toBe('127.0.0.1');
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

describe('gateway GATEWAY_MAX_WEBSOCKETS_PER_TENANT', () => {
  const REQUIRED = { API_KEY_PEPPER: 'p'.repeat(32) };

  it('defaults to half of GATEWAY_MAX_CONNECTIONS, leaving room for the other tenants', () => {
    expect(webSocketsPerTenant(parseGatewaySettings(REQUIRED))).toBe(5_000);
    expect(webSocketsPerTenant(parseGatewaySettings({ ...REQUIRED, GATEWAY_MAX_CONNECTIONS: '9' }))).toBe(4);
    expect(webSocketsPerTenant(parseGatewaySettings({ ...REQUIRED, GATEWAY_MAX_CONNECTIONS: '1' }))).toBe(1);
  });

  it('takes a value below GATEWAY_MAX_CONNECTIONS, or 0 for no limit', () => {
    for (const value of ['0', '1', '9999'])
      expect(
        webSocketsPerTenant(parseGatewaySettings({ ...REQUIRED, GATEWAY_MAX_WEBSOCKETS_PER_TENANT: value })),
      ).toBe(Number(value));
  });

  it.each(['10000', '20000'])(
    'refuses %s with GATEWAY_MAX_CONNECTIONS=10000 (one tenant could take every connection)',
    (value) => {
      expect(() => parseGatewaySettings({ ...REQUIRED, GATEWAY_MAX_WEBSOCKETS_PER_TENANT: value })).toThrow(
        /GATEWAY_MAX_WEBSOCKETS_PER_TENANT: must be less than GATEWAY_MAX_CONNECTIONS/,
      );
    },
  );

  it.each(['-1', '1.5', 'many'])('refuses %j', (value) => {
    expect(() => parseGatewaySettings({ ...REQUIRED, GATEWAY_MAX_WEBSOCKETS_PER_TENANT: value })).toThrow(
      /GATEWAY_MAX_WEBSOCKETS_PER_TENANT/,
    );
  });
});

describe('gateway GATEWAY_UPSTREAM_CONNECTIONS_PER_TARGET', () => {
  const REQUIRED = { API_KEY_PEPPER: 'p'.repeat(32) };

  it('defaults to 128 connections per origin target, and takes more for origins serving many streams', () => {
    expect(parseGatewaySettings(REQUIRED).GATEWAY_UPSTREAM_CONNECTIONS_PER_TARGET).toBe(128);
    expect(
      parseGatewaySettings({ ...REQUIRED, GATEWAY_UPSTREAM_CONNECTIONS_PER_TARGET: '4096' })
        .GATEWAY_UPSTREAM_CONNECTIONS_PER_TARGET,
    ).toBe(4096);
  });

  it.each(['0', '-1', '1.5', '100001', 'many'])('refuses %j', (value) => {
    expect(() =>
      parseGatewaySettings({ ...REQUIRED, GATEWAY_UPSTREAM_CONNECTIONS_PER_TARGET: value }),
    ).toThrow(/GATEWAY_UPSTREAM_CONNECTIONS_PER_TARGET/);
  });
});

describe('gateway GATEWAY_UPSTREAM_CLIENT_SHARE', () => {
  const REQUIRED = { API_KEY_PEPPER: 'p'.repeat(32) };

  it('defaults to three quarters of a target pool, and takes a part of it or 0 for no limit', () => {
    expect(parseGatewaySettings(REQUIRED).GATEWAY_UPSTREAM_CLIENT_SHARE).toBe(0.75);
    for (const value of ['0', '0.1', '1'])
      expect(
        parseGatewaySettings({ ...REQUIRED, GATEWAY_UPSTREAM_CLIENT_SHARE: value })
          .GATEWAY_UPSTREAM_CLIENT_SHARE,
      ).toBe(Number(value));
  });

  it.each(['-0.1', '1.5', 'half'])('refuses %j', (value) => {
    expect(() => parseGatewaySettings({ ...REQUIRED, GATEWAY_UPSTREAM_CLIENT_SHARE: value })).toThrow(
      /GATEWAY_UPSTREAM_CLIENT_SHARE/,
    );
  });
});

describe('gateway GATEWAY_MAX_UPSTREAM_REQUESTS_PER_TENANT', () => {
  const REQUIRED = { API_KEY_PEPPER: 'p'.repeat(32) };

  it('defaults to half of GATEWAY_MAX_CONNECTIONS', () => {
    expect(upstreamRequestsPerTenant(parseGatewaySettings(REQUIRED))).toBe(5_000);
    expect(
      upstreamRequestsPerTenant(parseGatewaySettings({ ...REQUIRED, GATEWAY_MAX_CONNECTIONS: '1' })),
    ).toBe(1);
  });

  it('takes any count, or 0 for no limit', () => {
    for (const value of ['0', '1', '50000'])
      expect(
        upstreamRequestsPerTenant(
          parseGatewaySettings({ ...REQUIRED, GATEWAY_MAX_UPSTREAM_REQUESTS_PER_TENANT: value }),
        ),
      ).toBe(Number(value));
  });

  it.each(['-1', '1.5', 'many'])('refuses %j', (value) => {
    expect(() =>
      parseGatewaySettings({ ...REQUIRED, GATEWAY_MAX_UPSTREAM_REQUESTS_PER_TENANT: value }),
    ).toThrow(/GATEWAY_MAX_UPSTREAM_REQUESTS_PER_TENANT/);
  });
});

describe('GATEWAY_WEBSOCKET_CREDENTIAL_GRACE_SECONDS', () => {
  const REQUIRED = { API_KEY_PEPPER: 'p'.repeat(32) };
  const graceOf = (value?: string) =>
    webSocketCredentialGraceMs(
      parseGatewaySettings(
        value === undefined ? REQUIRED : { ...REQUIRED, GATEWAY_WEBSOCKET_CREDENTIAL_GRACE_SECONDS: value },
      ),
    );

  it('closes a WebSocket as its credentials expire unless told to wait, or `off` never', () => {
    expect(graceOf()).toBe(0);
    expect(graceOf('30')).toBe(30_000);
    expect(graceOf('off')).toBeNull();
  });

  it.each(['-1', '1.5', 'never', '86401'])('refuses %j', (value) => {
    expect(() => graceOf(value)).toThrow(/GATEWAY_WEBSOCKET_CREDENTIAL_GRACE_SECONDS/);
  });
});

describe('CLERK_AUTHORIZED_PARTIES', () => {
  const REQUIRED = { API_KEY_PEPPER: 'p'.repeat(32) };

  it('takes origins as a browser sends them in Origin', () => {
    const config = parseGatewaySettings({
      ...REQUIRED,
      CLERK_AUTHORIZED_PARTIES: 'https://app.acme.example, http://localhost:5173',
    });
    expect(config.CLERK_AUTHORIZED_PARTIES).toEqual(['https://app.acme.example', 'http://localhost:5173']);
    expect(parseGatewaySettings(REQUIRED).CLERK_AUTHORIZED_PARTIES).toBeUndefined();
  });

  // Clerk compares a token's azp with each entry as a string: any of these would refuse every token.
  it.each([
    'https://app.acme.example/',
    'app.acme.example',
    'https://app.acme.example/dashboard',
    'HTTPS://App.acme.example',
  ])('refuses %s naming the setting and the origin to write', (value) => {
    expect(() => parseGatewaySettings({ ...REQUIRED, CLERK_AUTHORIZED_PARTIES: value })).toThrow(
      /CLERK_AUTHORIZED_PARTIES: .*origin/,
    );
  });
});

describe('gateway CLERK_ISSUER', () => {
  const REQUIRED = { API_KEY_PEPPER: 'p'.repeat(32) };
  const publishableKey = (frontendApi: string) =>
    `pk_test_${Buffer.from(`${frontendApi}$`).toString('base64')}`;

  it('takes an issuer, or a publishable key that names one', () => {
    expect(
      parseGatewaySettings({ ...REQUIRED, CLERK_ISSUER: 'https://clerk.example.com' }).CLERK_ISSUER,
    ).toBe('https://clerk.example.com');
    expect(
      parseGatewaySettings({ ...REQUIRED, CLERK_PUBLISHABLE_KEY: publishableKey('clerk.example.com') })
        .CLERK_PUBLISHABLE_KEY,
    ).toMatch(/^pk_test_/);
  });

  it('refuses a publishable key that names no Frontend API unless CLERK_ISSUER is set (else no issuer would be checked)', () => {
    expect(() => parseGatewaySettings({ ...REQUIRED, CLERK_PUBLISHABLE_KEY: 'pk_test_unused' })).toThrow(
      /CLERK_PUBLISHABLE_KEY/,
    );
    expect(
      parseGatewaySettings({
        ...REQUIRED,
        CLERK_PUBLISHABLE_KEY: 'pk_test_unused',
        CLERK_ISSUER: 'https://clerk.example.com',
      }).CLERK_ISSUER,
    ).toBe('https://clerk.example.com');
  });
});

describe('gateway TLS listener and its default certificate', () => {
  const REQUIRED = { API_KEY_PEPPER: 'p'.repeat(32) };
  const CERT = { GATEWAY_TLS_CERT_FILE: '/etc/vantageedge/tls.crt' };
  const KEY = { GATEWAY_TLS_KEY_FILE: '/etc/vantageedge/tls.key' };

  // A file named without the rest was silently unused: no TLS listener, and nothing said so.
  it.each([
    ['GATEWAY_TLS_KEY_FILE', { ...CERT }],
    ['GATEWAY_TLS_CERT_FILE', { ...KEY }],
    ['GATEWAY_TLS_CERT_FILE', { GATEWAY_TLS_PORT: '8443', ...KEY }],
    ['GATEWAY_TLS_PORT', { ...CERT, ...KEY }],
  ])('names %s when it is missing from the set', (setting, env) => {
    expect(() => parseGatewaySettings({ ...REQUIRED, ...env })).toThrow(
      new RegExp(`${setting}: is required`),
    );
  });

  it('takes the port with both files, and none of the three', () => {
    expect(() =>
      parseGatewaySettings({ ...REQUIRED, GATEWAY_TLS_PORT: '8443', ...CERT, ...KEY }),
    ).not.toThrow();
    expect(() => parseGatewaySettings(REQUIRED)).not.toThrow();
  });

  it('refuses a listener on another one’s port and address', () => {
    expect(() => parseGatewaySettings({ ...REQUIRED, GATEWAY_TLS_PORT: '8000', ...CERT, ...KEY })).toThrow(
      /GATEWAY_TLS_PORT: must differ from GATEWAY_PORT/,
    );
  });
});

describe('GATEWAY_PROXY_PROTOCOL', () => {
  const REQUIRED = { API_KEY_PEPPER: 'p'.repeat(32) };

  it('is off unless set, and takes only off or on', () => {
    expect(parseGatewaySettings(REQUIRED).GATEWAY_PROXY_PROTOCOL).toBe('off');
    expect(() =>
      parseGatewaySettings({
        ...REQUIRED,
        GATEWAY_PROXY_PROTOCOL: 'true',
        GATEWAY_TRUSTED_PROXIES: '10.0.0.0/8',
      }),
    ).toThrow(/GATEWAY_PROXY_PROTOCOL/);
  });

  it('refuses to start on without a trusted balancer (every connection would be closed)', () => {
    expect(() => parseGatewaySettings({ ...REQUIRED, GATEWAY_PROXY_PROTOCOL: 'on' })).toThrow(
      /GATEWAY_PROXY_PROTOCOL: needs GATEWAY_TRUSTED_PROXIES/,
    );
    const behindBalancer = {
      ...REQUIRED,
      GATEWAY_PROXY_PROTOCOL: 'on',
      GATEWAY_TRUSTED_PROXIES: '10.0.0.0/8',
    };
    expect(parseGatewaySettings(behindBalancer).GATEWAY_PROXY_PROTOCOL).toBe('on');
    const deprecatedTrust = { ...REQUIRED, GATEWAY_PROXY_PROTOCOL: 'on', GATEWAY_TRUST_PROXY: 'true' };
    expect(parseGatewaySettings(deprecatedTrust).GATEWAY_PROXY_PROTOCOL).toBe('on');
  });
});

describe('GATEWAY_REDIS_KEY_PREFIX', () => {
  const REQUIRED = { API_KEY_PEPPER: 'p'.repeat(32) };

  // Redis Cluster hashes only what is between a key's first `{` and the next `}`: a `{` in the prefix
  // would put every tenant's counters and cache entries on one slot, not each on its tenant's.
  it.each(['ve{prod}:', '{ve:'])('refuses %s, naming the setting', (prefix) => {
    expect(() => parseGatewaySettings({ ...REQUIRED, GATEWAY_REDIS_KEY_PREFIX: prefix })).toThrow(
      /GATEWAY_REDIS_KEY_PREFIX: .*\{/,
    );
  });

  it('takes a prefix without braces, or none', () => {
    expect(
      parseGatewaySettings({ ...REQUIRED, GATEWAY_REDIS_KEY_PREFIX: 've-prod:' }).GATEWAY_REDIS_KEY_PREFIX,
    ).toBe('ve-prod:');
    expect(parseGatewaySettings(REQUIRED).GATEWAY_REDIS_KEY_PREFIX).toBe('');
  });
});
