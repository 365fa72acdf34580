import { randomUUID } from 'node:crypto';
import type { OriginConfig } from '@vantageedge/shared/domain/gateway-config';
import { describe, expect, it } from 'vitest';
import { buildSnapshot } from '../testing/snapshots.js';
import type { UpstreamSet } from '../upstream/types.js';
import { GatewayConfigStore } from './gateway-config-store.js';

function recordingUpstreams() {
  const created: Array<{ origin: OriginConfig; closed: boolean }> = [];
  const factory = (origin: OriginConfig): UpstreamSet => {
    const entry = { origin, closed: false };
    created.push(entry);
    return {
      acquire: () => undefined,
      close: async () => {
        entry.closed = true;
      },
    };
  };
  return { created, factory };
}

describe('GatewayConfigStore', () => {
  const originId = randomUUID();
  const base = (
    version: number,
    subdomain = 'acme',
    extra: Partial<Parameters<typeof buildSnapshot>[0]> = {},
  ) =>
    buildSnapshot({
      tenantId: '00000000-0000-4000-8000-000000000001',
      version,
      subdomain,
      origins: [{ id: originId, targets: ['http://127.0.0.1:1'] }],
      routes: [{ origin_id: originId, path_pattern: '/api/*' }],
      ...extra,
    });

  it('resolves every base domain, any case, with or without port or trailing dot', () => {
    const { factory } = recordingUpstreams();
    const store = new GatewayConfigStore({
      baseDomains: ['vantageedge.dev', 'localhost'],
      createUpstreamSet: factory,
    });
    expect(store.apply(base(1))).toBe(true);
    for (const host of [
      'acme.localhost',
      'ACME.Localhost:8000',
      'acme.vantageedge.dev.',
      'acme.vantageedge.dev:443',
    ]) {
      expect(store.resolveHost(host)?.subdomain).toBe('acme');
    }
    for (const host of [
      'other.localhost',
      'acme.example.com',
      'localhost',
      '',
      '[::1]:8000',
      'xacme.localhost',
    ]) {
      expect(store.resolveHost(host)).toBeUndefined();
    }
    expect(store.resolveHost(undefined)).toBeUndefined();
  });

  it('ignores stale and duplicate versions and reports the applied one', () => {
    const { factory } = recordingUpstreams();
    const store = new GatewayConfigStore({ baseDomains: ['localhost'], createUpstreamSet: factory });
    expect(store.apply(base(5))).toBe(true);
    expect(store.apply(base(5, 'renamed'))).toBe(false);
    expect(store.apply(base(4, 'renamed'))).toBe(false);
    expect(store.resolveHost('acme.localhost')).toBeDefined();
    expect(store.appliedVersions().get('00000000-0000-4000-8000-000000000001')).toBe(5n);
  });

  it('moves the tenant to its new subdomain and frees the old host', () => {
    const { factory } = recordingUpstreams();
    const store = new GatewayConfigStore({ baseDomains: ['localhost'], createUpstreamSet: factory });
    store.apply(base(1));
    store.apply(base(2, 'renamed'));
    expect(store.resolveHost('acme.localhost')).toBeUndefined();
    expect(store.resolveHost('renamed.localhost')?.version).toBe(2n);
  });

  it('keeps an unchanged origin’s UpstreamSet and closes replaced ones', () => {
    const { created, factory } = recordingUpstreams();
    const store = new GatewayConfigStore({ baseDomains: ['localhost'], createUpstreamSet: factory });
    store.apply(base(1));
    store.apply(base(2)); // same origin config
    expect(created).toHaveLength(1);
    store.apply(
      base(3, 'acme', {
        origins: [{ id: originId, targets: ['http://127.0.0.1:2'] }],
      }),
    );
    expect(created).toHaveLength(2);
    expect(created[0]?.closed).toBe(true);
    expect(created[1]?.closed).toBe(false);
  });

  it('removes a tenant: host stops resolving, pools close, an older snapshot cannot resurrect it', () => {
    const { created, factory } = recordingUpstreams();
    const store = new GatewayConfigStore({ baseDomains: ['localhost'], createUpstreamSet: factory });
    store.apply(base(3));
    expect(store.remove('00000000-0000-4000-8000-000000000001')).toBe(true);
    expect(store.resolveHost('acme.localhost')).toBeUndefined();
    expect(created[0]?.closed).toBe(true);
    expect(store.appliedVersions().size).toBe(0);
    expect(store.apply(base(2))).toBe(false);
    expect(store.apply(base(4))).toBe(true);
  });

  it('does not let a custom domain take over another tenant’s host', () => {
    const { factory } = recordingUpstreams();
    const warnings: string[] = [];
    const store = new GatewayConfigStore({
      baseDomains: ['localhost'],
      createUpstreamSet: factory,
      onWarning: (w) => warnings.push(w.message),
    });
    store.apply(base(1));
    store.apply(
      buildSnapshot({
        subdomain: 'evil',
        origins: [],
        routes: [],
        settings: { custom_domains: ['ACME.localhost', 'api.evil.example'] },
      }),
    );
    expect(store.resolveHost('acme.localhost')?.subdomain).toBe('acme');
    expect(store.resolveHost('api.evil.example')?.subdomain).toBe('evil');
    expect(warnings.join()).toContain('acme.localhost');
  });

  it('compiles routes, skipping a bad pattern, and indexes keys by hash', () => {
    const { factory } = recordingUpstreams();
    const warnings: string[] = [];
    const store = new GatewayConfigStore({
      baseDomains: ['localhost'],
      createUpstreamSet: factory,
      onWarning: (w) => warnings.push(w.message),
    });
    store.apply(
      base(1, 'acme', {
        routes: [
          { origin_id: originId, path_pattern: '/a/*/b' },
          { origin_id: originId, path_pattern: '/ok', strip_prefix: '/ok/' },
        ],
        apiKeys: [{ key_hash: 'a'.repeat(64), scopes: ['read'], expires_at: '2030-01-01T00:00:00Z' }],
      }),
    );
    const tenant = store.resolveHost('acme.localhost')!;
    expect(tenant.routes).toHaveLength(1);
    expect(tenant.router.match('GET', '/ok')?.stripPrefix).toBe('/ok');
    expect(warnings[0]).toContain('/a/*/b');
    expect(tenant.apiKeys.get('a'.repeat(64))).toMatchObject({
      scopes: ['read'],
      expiresAtMs: Date.parse('2030-01-01T00:00:00Z'),
    });
  });
});
