import { randomBytes, randomUUID } from 'node:crypto';
import type { OriginConfig, SnapshotCertificate } from '@vantageedge/shared/domain/gateway-config';
import { certificateKeyContext, keyRing, sealPrivateKey } from '@vantageedge/shared/tls/private-key-envelope';
import { describe, expect, it } from 'vitest';
import { RemoteJwksRegistry } from '../auth/jwks.js';
import { buildSnapshot } from '../testing/snapshots.js';
import type { UpstreamSet } from '../upstream/types.js';
import { GatewayConfigStore, type HostRefusal } from './gateway-config-store.js';

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

  it('keeps an origin presenting a client certificate when only its key is resealed or a route changes', () => {
    // Its upstream set holds the opened key and the TLS context: made again, every replica would open
    // the keys and build the contexts of all the tenant's origins for each change of its config.
    const { created, factory } = recordingUpstreams();
    const store = new GatewayConfigStore({ baseDomains: ['localhost'], createUpstreamSet: factory });
    const tenantId = '00000000-0000-4000-8000-000000000001';
    const certificateId = randomUUID();
    const certificate = (kek: string, fingerprint: string): SnapshotCertificate => ({
      id: certificateId,
      domains: [],
      certificate_pem: `certificate ${fingerprint}`,
      private_key: sealPrivateKey(
        keyRing(kek),
        `key ${fingerprint}`,
        certificateKeyContext(tenantId, certificateId),
      ),
      fingerprint_sha256: fingerprint,
      not_after: new Date(Date.now() + 86_400_000).toISOString(),
    });
    const presenting = (version: number, pathPattern: string, presented: SnapshotCertificate) => {
      const snapshot = base(version, 'acme', {
        certificates: [presented],
        routes: [{ origin_id: originId, path_pattern: pathPattern }],
      });
      for (const origin of snapshot.origins) {
        origin.tls = { ...origin.tls, client_certificate_id: certificateId };
      }
      return snapshot;
    };
    const [firstKek, secondKek] = [randomBytes(32), randomBytes(32)].map((key) => key.toString('base64'));
    store.apply(presenting(1, '/api/*', certificate(firstKek!, 'AA:01')));
    store.apply(presenting(2, '/api/*', certificate(secondKek!, 'AA:01')));
    store.apply(presenting(3, '/v2/*', certificate(secondKek!, 'AA:01')));
    expect(created).toHaveLength(1);
    store.apply(presenting(4, '/v2/*', certificate(secondKek!, 'BB:02')));
    expect(created).toHaveLength(2);
    expect(created[0]?.closed).toBe(true);
  });

  it('closes the origins a snapshot it cannot compile opened, and keeps serving the previous version', () => {
    const { created, factory } = recordingUpstreams();
    const store = new GatewayConfigStore({ baseDomains: ['localhost'], createUpstreamSet: factory });
    // A route the gateway cannot compile (a stage compiler's bug, a snapshot of a schema it misreads).
    store.setPipeline({
      policies: [
        {
          name: 'unreadable',
          compileRoute: ({ route }) => {
            if (route.path_pattern === '/broken/*') throw new Error('cannot compile this route');
            return null;
          },
        },
      ],
    });
    store.apply(base(1));
    const changedOrigin = (version: number) =>
      base(version, 'acme', {
        origins: [{ id: originId, targets: [`http://127.0.0.1:${version}`] }],
        routes: [{ origin_id: originId, path_pattern: '/broken/*' }],
      });
    for (const version of [2, 3, 4]) {
      expect(() => store.apply(changedOrigin(version))).toThrow('cannot compile this route');
    }
    // Each failed version made the origin's upstreams (pools, active health checks): none stays open.
    expect(created.map((entry) => entry.closed)).toEqual([false, true, true, true]);
    expect(store.appliedVersions().get('00000000-0000-4000-8000-000000000001')).toBe(1n);
    expect(store.get('00000000-0000-4000-8000-000000000001')?.origins.get(originId)?.upstreams).toBeDefined();
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

  describe('host ownership (regression: a custom domain could capture another tenant’s host)', () => {
    const tenant = (n: number) => `00000000-0000-4000-8000-00000000000${n}`;
    function hostStore() {
      const { factory } = recordingUpstreams();
      const warnings: string[] = [];
      const refusals: HostRefusal[] = [];
      const store = new GatewayConfigStore({
        baseDomains: ['vantageedge.dev', 'localhost'],
        createUpstreamSet: factory,
        onWarning: (w) => warnings.push(w.message),
        onHostRefused: (r) => refusals.push(r),
      });
      return { store, warnings, refusals };
    }
    const snapshot = (
      id: number,
      version: number,
      subdomain: string,
      extra: Partial<Parameters<typeof buildSnapshot>[0]> = {},
    ) => buildSnapshot({ tenantId: tenant(id), version, subdomain, origins: [], routes: [], ...extra });

    it('ignores legacy settings.custom_domains whatever the apply order: they were never verified', () => {
      const { store } = hostStore();
      store.apply(
        snapshot(9, 1, 'evil', {
          settings: { custom_domains: ['acme.localhost', 'later.localhost', 'x.example'] },
        }),
      );
      store.apply(snapshot(1, 2, 'acme'));
      store.apply(snapshot(2, 3, 'later'));
      expect(store.resolveHost('acme.localhost')?.subdomain).toBe('acme');
      expect(store.resolveHost('later.localhost')?.subdomain).toBe('later');
      expect(store.resolveHost('x.example')).toBeUndefined();
    });

    it('never lets a verified custom domain under a base domain shadow a subdomain host', () => {
      const { store, refusals } = hostStore();
      store.apply(
        snapshot(9, 1, 'evil', {
          customDomains: ['acme.localhost', 'later.vantageedge.dev', 'vantageedge.dev', 'api.evil.example'],
        }),
      );
      store.apply(snapshot(1, 2, 'acme'));
      expect(store.resolveHost('acme.localhost')?.subdomain).toBe('acme');
      // A subdomain nobody holds yet is not the custom-domain tenant's either.
      expect(store.resolveHost('later.vantageedge.dev')).toBeUndefined();
      expect(store.resolveHost('vantageedge.dev')).toBeUndefined();
      expect(store.resolveHost('api.evil.example')?.subdomain).toBe('evil');
      expect(refusals.filter((r) => r.reason === 'under_base_domain').map((r) => r.host)).toEqual([
        'acme.localhost',
        'later.vantageedge.dev',
        'vantageedge.dev',
      ]);
      expect(store.get(tenant(9))?.hostNames).not.toContain('acme.localhost');
    });

    it('refuses non-canonical custom domains in a snapshot', () => {
      const { store, refusals } = hostStore();
      store.apply(
        snapshot(1, 1, 'acme', { customDomains: ['API.Example.com', '*.example.com', 'ok.example.com'] }),
      );
      expect(store.resolveHost('api.example.com')).toBeUndefined();
      expect(store.resolveHost('ok.example.com')?.subdomain).toBe('acme');
      expect(refusals.map((r) => [r.host, r.reason])).toEqual([
        ['API.Example.com', 'invalid'],
        ['*.example.com', 'invalid'],
      ]);
    });

    it('gives a custom domain both tenants’ snapshots claim at once to the earlier verification, in either apply order', () => {
      for (const order of [
        [1, 2],
        [2, 1],
      ]) {
        const { store, refusals } = hostStore();
        // Each snapshot is newer than the other's claim: both held it at position 15 (a double claim).
        const claims = {
          1: snapshot(1, 20, 'acme', {
            customDomains: [{ domain: 'shop.example.com', verified_position: 5 }],
          }),
          2: snapshot(2, 30, 'globex', {
            customDomains: [{ domain: 'shop.example.com', verified_position: 15 }],
          }),
        };
        for (const id of order) store.apply(claims[id as 1 | 2]);
        expect(store.resolveHost('shop.example.com')?.id, `order ${order}`).toBe(tenant(1));
        expect(refusals.at(-1)).toMatchObject({
          tenantId: tenant(2),
          host: 'shop.example.com',
          reason: 'claimed_by_other_tenant',
          ownerTenantId: tenant(1),
        });
        // The holder lets go (its next snapshot no longer lists it): the other claim takes over.
        store.apply(snapshot(1, 40, 'acme'));
        expect(store.resolveHost('shop.example.com')?.id).toBe(tenant(2));
      }
    });

    it('gives a subdomain both tenants’ snapshots claim at once to the earlier claim; removal hands it over', () => {
      for (const order of [
        [1, 2],
        [2, 1],
      ]) {
        const { store, warnings } = hostStore();
        const claims = {
          1: snapshot(1, 50, 'acme', { subdomainPosition: 10 }),
          2: snapshot(2, 40, 'acme', { subdomainPosition: 40 }),
        };
        for (const id of order) store.apply(claims[id as 1 | 2]);
        expect(store.resolveHost('acme.localhost')?.id, `order ${order}`).toBe(tenant(1));
        expect(warnings.join('\n')).toContain('acme.vantageedge.dev not routed to this tenant');
        store.remove(tenant(1));
        expect(store.resolveHost('acme.localhost')?.id).toBe(tenant(2));
      }
    });

    describe('regression: a host moved to another tenant was served to its former holder until that holder’s release arrived', () => {
      // The holder's snapshot and the new owner's are separate keys of the topic: a replica may apply
      // the new owner's claim before the release, and kept routing the host (its traffic, credentials,
      // certificate) to the former holder meanwhile.
      it('gives a custom domain to the tenant that verified it after the other’s snapshot, in either apply order', () => {
        for (const order of [
          [1, 2],
          [2, 1],
        ]) {
          const { store, refusals } = hostStore();
          const snapshots = {
            // Verified at 5; released at 50, a snapshot this replica has not applied yet.
            1: snapshot(1, 10, 'acme', {
              customDomains: [{ domain: 'shop.example.com', verified_position: 5 }],
            }),
            2: snapshot(2, 60, 'globex', {
              customDomains: [{ domain: 'shop.example.com', verified_position: 60 }],
            }),
          };
          for (const id of order) store.apply(snapshots[id as 1 | 2]);
          expect(store.resolveHost('shop.example.com')?.id, `order ${order}`).toBe(tenant(2));
          expect(store.get(tenant(1))?.hostNames).toContain('shop.example.com');
          expect(refusals.at(-1)).toMatchObject({
            tenantId: tenant(1),
            host: 'shop.example.com',
            reason: 'claimed_by_other_tenant',
            ownerTenantId: tenant(2),
          });
          store.apply(snapshot(1, 50, 'acme'));
          expect(store.resolveHost('shop.example.com')?.id).toBe(tenant(2));
        }
      });

      it('gives a subdomain to its new owner (a rename, a deleted tenant’s reuse) and back (A → B → A)', () => {
        for (const order of [
          [1, 2],
          [2, 1],
        ]) {
          const { store } = hostStore();
          const snapshots = {
            1: snapshot(1, 10, 'acme'),
            // Renamed away at 20 (not applied here); B took the name at 30.
            2: snapshot(2, 30, 'acme', { subdomainPosition: 30 }),
          };
          for (const id of order) store.apply(snapshots[id as 1 | 2]);
          expect(store.resolveHost('acme.localhost')?.id, `order ${order}`).toBe(tenant(2));
          // B renamed away at 40 (not applied here), A took its name back at 50.
          store.apply(snapshot(1, 50, 'acme', { subdomainPosition: 50 }));
          expect(store.resolveHost('acme.vantageedge.dev')?.id).toBe(tenant(1));
          store.apply(snapshot(2, 40, 'globex', { subdomainPosition: 40 }));
          expect(store.resolveHost('acme.vantageedge.dev')?.id).toBe(tenant(1));
          expect(store.resolveHost('globex.vantageedge.dev')?.id).toBe(tenant(2));
        }
      });

      it('gives a deleted tenant’s hosts to the tenant that took them before its tombstone arrives', () => {
        const { store } = hostStore();
        store.apply(snapshot(1, 10, 'acme', { customDomains: ['api.acme.example'] }));
        // Tenant 1 deleted at 60 (its tombstone not applied here); tenant 2 created at 70 with its
        // subdomain, and verified its domain at 80.
        store.apply(
          snapshot(2, 80, 'acme', {
            subdomainPosition: 70,
            customDomains: [{ domain: 'api.acme.example', verified_position: 80 }],
          }),
        );
        expect(store.resolveHost('acme.localhost')?.id).toBe(tenant(2));
        expect(store.resolveHost('api.acme.example')?.id).toBe(tenant(2));
        store.remove(tenant(1));
        expect(store.resolveHost('acme.localhost')?.id).toBe(tenant(2));
      });
    });
  });

  it('regression: keeps the key set of a jwks_url only while a tenant in force names it', () => {
    // Every jwks_url ever applied kept its key set (up to 1 MiB of keys, 10,000 remembered kids) for
    // the life of the process: a tenant admin changing the URL again and again grew every replica.
    const { factory } = recordingUpstreams();
    const remoteJwks = new RemoteJwksRegistry();
    const store = new GatewayConfigStore({
      baseDomains: ['localhost'],
      createUpstreamSet: factory,
      remoteJwks,
    });
    const oidc = (url: string) => ({ oidc: { issuer: 'https://idp.test', audience: 'api', jwks_url: url } });
    for (let version = 1; version <= 50; version++) {
      store.apply(base(version, 'acme', { settings: oidc(`https://idp.test/jwks?v=${version}`) }));
    }
    expect(remoteJwks.size).toBe(1);

    const other = (version: number, url: string) =>
      buildSnapshot({
        tenantId: '00000000-0000-4000-8000-000000000002',
        version,
        subdomain: 'other',
        origins: [],
        routes: [],
        settings: oidc(url),
      });
    store.apply(other(1, 'https://idp.test/jwks?v=50'));
    const shared = store.get('00000000-0000-4000-8000-000000000002')?.auth.oidc?.keys;
    expect(store.get('00000000-0000-4000-8000-000000000001')?.auth.oidc?.keys).toBe(shared);
    store.apply(base(51));
    expect(remoteJwks.size).toBe(1);
    expect(store.get('00000000-0000-4000-8000-000000000002')?.auth.oidc?.keys).toBe(shared);
    store.remove('00000000-0000-4000-8000-000000000002');
    expect(remoteJwks.size).toBe(0);
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
      identity: { kind: 'api_key', scopes: ['read'] },
      expiresAtMs: Date.parse('2030-01-01T00:00:00Z'),
    });
  });
});
