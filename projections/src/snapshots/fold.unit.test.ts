import { randomUUID } from 'node:crypto';
import type { ControlPlaneEvent, ControlPlaneNewEvent, TenantState } from '@vantageedge/shared/domain/events';
import { tenantSnapshot } from '@vantageedge/shared/domain/gateway-config';
import { describe, expect, it, vi } from 'vitest';
import { foldSnapshotEvent, type SnapshotState, snapshotTenantOf } from './fold.js';
import { apiKeyIssued, newEvent, originState, recorded, routeState, tenantCreated } from './testing.js';

function foldAll(events: ControlPlaneEvent[]): SnapshotState | undefined {
  return events.reduce<SnapshotState | undefined>(
    (state, event) => foldSnapshotEvent(state, event),
    undefined,
  );
}

function live(state: SnapshotState | undefined) {
  if (state?.status !== 'live') throw new Error(`expected a live snapshot, got ${state?.status}`);
  return state.snapshot;
}

describe('snapshot fold', () => {
  const tenantId = randomUUID();
  const origin = originState(tenantId);

  it('builds a valid snapshot versioned by the newest folded event', () => {
    const created = recorded(tenantCreated(tenantId), 10n);
    const added = recorded(newEvent('OriginCreated', origin, '2026-11-27T01:00:00.000Z'), 12n);
    const snapshot = live(foldAll([created, added]));
    expect(tenantSnapshot.parse(snapshot)).toEqual(snapshot);
    expect(snapshot.version).toBe('12');
    expect(snapshot.event_time).toBe('2026-11-27T01:00:00.000Z');
    expect(snapshot.origins).toEqual([expect.objectContaining({ id: origin.origin_id, name: 'main' })]);
    expect(snapshot.origins[0]).not.toHaveProperty('tenant_id');
  });

  it('replaces an updated route and keeps routes in match order', () => {
    const wildcard = routeState(tenantId, origin.origin_id, { path_pattern: '/api/*' });
    const param = routeState(tenantId, origin.origin_id, { path_pattern: '/api/users/:id' });
    const exact = routeState(tenantId, origin.origin_id, { path_pattern: '/api/users/me' });
    const urgent = routeState(tenantId, origin.origin_id, { path_pattern: '/*', priority: 10 });
    const state = foldAll([
      recorded(tenantCreated(tenantId)),
      recorded(newEvent('OriginCreated', origin)),
      recorded(newEvent('RouteCreated', wildcard)),
      recorded(newEvent('RouteCreated', param)),
      recorded(newEvent('RouteCreated', exact)),
      recorded(newEvent('RouteCreated', urgent)),
      recorded(
        newEvent('RouteUpdated', {
          ...param,
          path_pattern: '/api/users/:id/posts',
          changed_fields: ['path_pattern'],
        }),
      ),
    ]);
    const routes = live(state).routes;
    expect(routes.map((route) => route.path_pattern)).toEqual([
      '/*',
      '/api/users/me',
      '/api/users/:id/posts',
      '/api/*',
    ]);
    expect(routes[2]).not.toHaveProperty('changed_fields');
  });

  it("carries a route's policies into the snapshot, and a route that matched on more conditions first", () => {
    const plain = routeState(tenantId, origin.origin_id, { path_pattern: '/items/*' });
    const versioned = routeState(tenantId, origin.origin_id, {
      path_pattern: '/items/*',
      match: { hosts: [], headers: [{ name: 'x-api-version', exact: '2' }], query: [] },
      cors: {
        allow_origins: ['https://app.example.com'],
        allow_methods: [],
        allow_headers: [],
        expose_headers: [],
        allow_credentials: false,
        max_age_seconds: 600,
      },
      ip_rules: { allow: [], deny: ['203.0.113.0/24'] },
      fixed_response: {
        status: 503,
        headers: { 'retry-after': '60' },
        body: 'soon',
        content_type: 'text/plain',
      },
    });
    const routes = live(
      foldAll([
        recorded(tenantCreated(tenantId)),
        recorded(newEvent('OriginCreated', origin)),
        recorded(newEvent('RouteCreated', plain)),
        recorded(newEvent('RouteCreated', versioned)),
      ]),
    ).routes;
    expect(routes.map((route) => route.id)).toEqual([versioned.route_id, plain.route_id]);
    expect(routes[0]).toMatchObject({
      match: versioned.match,
      cors: versioned.cors,
      ip_rules: versioned.ip_rules,
      fixed_response: versioned.fixed_response,
      retries: null,
    });
  });

  it('reads a route recorded before the route policies existed as a route without any', () => {
    const {
      match: _m,
      cors: _c,
      ip_rules: _i,
      fixed_response: _f,
      redirect: _r,
      ...old
    } = routeState(tenantId, origin.origin_id);
    const routes = live(
      foldAll([
        recorded(tenantCreated(tenantId)),
        recorded(newEvent('OriginCreated', origin)),
        recorded(newEvent('RouteCreated', old as never)),
      ]),
    ).routes;
    expect(routes[0]).toMatchObject({
      match: null,
      cors: null,
      ip_rules: null,
      fixed_response: null,
      redirect: null,
    });
  });

  it('removes revoked keys, shortens rotated ones, and never carries the plaintext prefix', () => {
    const kept = randomUUID();
    const revoked = randomUUID();
    const state = foldAll([
      recorded(tenantCreated(tenantId)),
      recorded(apiKeyIssued(tenantId, kept)),
      recorded(apiKeyIssued(tenantId, revoked)),
      recorded(
        newEvent(
          'ApiKeyRotated',
          {
            api_key_id: kept,
            tenant_id: tenantId,
            replaced_by: randomUUID(),
            old_key_expires_at: '2026-11-28T00:00:00.000Z',
          },
          '2026-11-27T00:00:00.000Z',
        ),
      ),
      recorded(
        newEvent(
          'ApiKeyRevoked',
          { api_key_id: revoked, tenant_id: tenantId, reason: 'leaked' },
          '2026-11-27T00:00:01.000Z',
        ),
      ),
    ]);
    const keys = live(state).api_keys;
    expect(keys.map((key) => key.id)).toEqual([kept]);
    expect(keys[0]?.expires_at).toBe('2026-11-28T00:00:00.000Z');
    expect(JSON.stringify(keys)).not.toContain('ve_live_');
  });

  it('drops a key once it has expired by the time of the tenant’s next event, judged by that event’s time', () => {
    const at = (event: ControlPlaneNewEvent, occurredAt: string) =>
      recorded({ ...event, metadata: { ...event.metadata, occurred_at: occurredAt } });
    const lasting = randomUUID();
    const expiring = randomUUID();
    const issued = foldAll([
      at(tenantCreated(tenantId), '2026-11-27T10:00:00.000Z'),
      at(apiKeyIssued(tenantId, lasting), '2026-11-27T10:00:00.000Z'),
      at(apiKeyIssued(tenantId, expiring, '2026-11-27T12:00:00.000Z'), '2026-11-27T10:00:00.000Z'),
    ]);
    const before = foldSnapshotEvent(
      issued,
      at(newEvent('OriginCreated', origin), '2026-11-27T11:59:59.999Z'),
    );
    expect(live(before).api_keys.map((key) => key.id)).toEqual([lasting, expiring]);
    const deleted = { origin_id: origin.origin_id, tenant_id: tenantId };
    const after = foldSnapshotEvent(
      before,
      at(newEvent('OriginDeleted', deleted), '2026-11-27T12:00:00.000Z'),
    );
    expect(live(after).api_keys.map((key) => key.id)).toEqual([lasting]);
    const bornExpired = apiKeyIssued(tenantId, randomUUID(), '2020-01-01T00:00:00.000Z');
    const born = foldSnapshotEvent(after, at(bornExpired, '2026-11-27T12:00:01.000Z'));
    expect(live(born).api_keys.map((key) => key.id)).toEqual([lasting]);
  });

  it('reads the expiry of a tenant’s keys once for a run of its route changes, not once per change', () => {
    // A config apply of a tenant at TENANT_MAX_API_KEYS folded thousands of route events, each reading
    // every key's expiry: every other tenant's change waited behind that work.
    const keyCount = 1000;
    const changes = 200;
    const route = routeState(tenantId, origin.origin_id);
    const issued = foldAll([
      recorded(tenantCreated(tenantId)),
      recorded(newEvent('OriginCreated', origin)),
      recorded(newEvent('RouteCreated', route)),
      ...Array.from({ length: keyCount }, () =>
        recorded(apiKeyIssued(tenantId, randomUUID(), '2099-01-01T00:00:00.000Z')),
      ),
    ]);
    // As loaded from PostgreSQL: nothing is remembered of the folds that built it.
    let state: SnapshotState | undefined = structuredClone(issued);
    const updates = Array.from({ length: changes }, (_, index) =>
      recorded(newEvent('RouteUpdated', { ...route, priority: index + 1, changed_fields: ['priority'] })),
    );
    const parse = vi.spyOn(Date, 'parse');
    try {
      for (const update of updates) state = foldSnapshotEvent(state, update);
      expect(parse.mock.calls.length).toBeLessThanOrEqual(keyCount + 2 * changes);
    } finally {
      parse.mockRestore();
    }
    expect(live(state).api_keys).toHaveLength(keyCount);
    expect(live(state).routes[0]?.priority).toBe(changes);
  });

  it('turns a deleted tenant into a tombstone state that later events do not revive', () => {
    const deleted = foldAll([
      recorded(tenantCreated(tenantId)),
      recorded(newEvent('TenantDeleted', { tenant_id: tenantId }), 50n),
    ]);
    expect(deleted).toMatchObject({ status: 'deleted', tenantId, version: 50n });
    const after = foldSnapshotEvent(deleted, recorded(newEvent('OriginCreated', origin), 51n));
    expect(after).toBe(deleted);
  });

  it('ignores events that do not reach the gateway', () => {
    const purge = recorded(newEvent('CachePurgeRequested', { tenant_id: tenantId, route_id: null }));
    const roleChanged = recorded(
      newEvent('UserRoleChanged', {
        user_id: randomUUID(),
        tenant_id: tenantId,
        clerk_user_id: 'user_1',
        email: 'a@example.com',
        role: 'admin',
        changed_fields: ['role'],
      }),
    );
    const pendingDomain = recorded(
      newEvent('CustomDomainCreated', {
        tenant_id: tenantId,
        custom_domain_id: randomUUID(),
        domain: 'api.acme.example',
        verification_token: 'token',
      }),
    );
    expect(snapshotTenantOf(purge)).toBeNull();
    expect(snapshotTenantOf(roleChanged)).toBeNull();
    expect(snapshotTenantOf(pendingDomain)).toBeNull();
    const state = foldAll([recorded(tenantCreated(tenantId))]);
    expect(
      foldSnapshotEvent(
        state,
        recorded(newEvent('ApiKeyRevoked', { api_key_id: randomUUID(), tenant_id: tenantId, reason: null })),
      ),
    ).toBe(state);
  });

  it("carries the tenant's users: who may call its jwt routes when it has no Clerk org", () => {
    const userId = randomUUID();
    const user = {
      user_id: userId,
      tenant_id: tenantId,
      clerk_user_id: 'user_owner',
      email: 'o@example.com',
      role: 'owner' as const,
    };
    const added = live(
      foldAll([recorded(tenantCreated(tenantId), 1n), recorded(newEvent('UserCreated', user), 2n)]),
    );
    expect(added.users).toEqual([{ id: userId, clerk_user_id: 'user_owner' }]);
    expect(added.version).toBe('2');
    const removed = live(
      foldAll([
        recorded(tenantCreated(tenantId), 1n),
        recorded(newEvent('UserCreated', user), 2n),
        recorded(newEvent('UserDeleted', { user_id: userId, tenant_id: tenantId }), 3n),
      ]),
    );
    expect(removed.users).toEqual([]);
  });

  it('carries only verified custom domains, with the position that verified them', () => {
    const claim = { tenant_id: tenantId, custom_domain_id: randomUUID(), domain: 'api.acme.example' };
    const events = [
      recorded(tenantCreated(tenantId), 1n),
      recorded(newEvent('CustomDomainCreated', { ...claim, verification_token: 't' }), 2n),
    ];
    const pending = foldAll(events);
    expect(live(pending).custom_domains).toEqual([]);
    const verified = foldAll([
      ...events,
      recorded(newEvent('CustomDomainVerified', { ...claim, method: 'dns_txt' }), 3n),
    ]);
    expect(live(verified).custom_domains).toEqual([{ domain: 'api.acme.example', verified_position: '3' }]);
    expect(tenantSnapshot.parse(live(verified))).toEqual(live(verified));
    const removed = foldSnapshotEvent(verified, recorded(newEvent('CustomDomainDeleted', claim), 4n));
    expect(live(removed).custom_domains).toEqual([]);
  });

  it('drops legacy settings: unverified custom_domains and unbound service_jwks never reach a gateway', () => {
    const legacy = tenantCreated(tenantId);
    const data = {
      ...(legacy.data as TenantState),
      settings: {
        rate_limit: null,
        oidc: null,
        custom_domains: ['victim.localhost'],
        service_jwks: [{ kty: 'EC', crv: 'P-256', x: 'x', y: 'y' }],
      },
    };
    // As stored before these fields were retired.
    const stored = { ...legacy, data } as unknown as ControlPlaneNewEvent;
    const snapshot = live(foldAll([recorded(stored, 1n)]));
    expect(snapshot.tenant.settings).toEqual({
      rate_limit: null,
      oidc: null,
      authorized_parties: null,
      service_accounts: [],
      ip_rules: null,
    });
    expect(snapshot.custom_domains).toEqual([]);
    expect(tenantSnapshot.parse(snapshot)).toEqual(snapshot);
  });

  it('remembers from which position the tenant holds its subdomain', () => {
    const creation = tenantCreated(tenantId);
    const tenant = creation.data as TenantState;
    const created = recorded(creation, 5n);
    const renamed = recorded(
      newEvent('TenantUpdated', { ...tenant, name: 'Renamed', changed_fields: ['name'] }),
      7n,
    );
    expect(live(foldAll([created, renamed])).tenant.subdomain_position).toBe('5');
    const moved = recorded(
      newEvent('TenantUpdated', { ...tenant, subdomain: 'moved', changed_fields: ['subdomain'] }),
      9n,
    );
    expect(live(foldAll([created, renamed, moved])).tenant.subdomain_position).toBe('9');
  });
});

describe('snapshot fold: certificates', () => {
  const tenantId = randomUUID();
  const sealed = (kek: string) => ({
    algorithm: 'aes-256-gcm-envelope-v1' as const,
    kek_id: kek,
    wrapped_key: 'AAAA',
    ciphertext: 'BBBB',
  });
  const uploaded = (id: string) =>
    newEvent('CertificateUploaded', {
      certificate_id: id,
      tenant_id: tenantId,
      domains: ['api.acme.test'],
      certificate_pem: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
      private_key: sealed('0000000000000001'),
      fingerprint_sha256: 'AA:BB',
      subject: 'CN=api.acme.test',
      issuer: 'CN=Test CA',
      serial_number: '01',
      dns_names: ['api.acme.test'],
      key_type: 'EC prime256v1',
      not_before: '2026-01-01T00:00:00.000Z',
      not_after: '2027-01-01T00:00:00.000Z',
    });

  it('carries a certificate with its sealed key and the domains it serves; reseal and delete follow', () => {
    const first = randomUUID();
    const second = randomUUID();
    const withTwo = live(
      foldAll([recorded(tenantCreated(tenantId)), recorded(uploaded(first)), recorded(uploaded(second))]),
    );
    expect(tenantSnapshot.parse(withTwo)).toEqual(withTwo);
    expect(withTwo.certificates).toEqual([
      expect.objectContaining({
        id: first,
        domains: ['api.acme.test'],
        private_key: sealed('0000000000000001'),
      }),
      expect.objectContaining({ id: second }),
    ]);
    expect(withTwo.certificates[0]).not.toHaveProperty('subject');

    const resealed = foldSnapshotEvent(
      { status: 'live', snapshot: withTwo },
      recorded(
        newEvent('CertificateKeyResealed', {
          certificate_id: first,
          tenant_id: tenantId,
          private_key: sealed('0000000000000002'),
        }),
      ),
    );
    expect(live(resealed).certificates[0]?.private_key.kek_id).toBe('0000000000000002');

    const afterDelete = foldSnapshotEvent(
      resealed,
      recorded(newEvent('CertificateDeleted', { certificate_id: first, tenant_id: tenantId })),
    );
    expect(live(afterDelete).certificates.map((certificate) => certificate.id)).toEqual([second]);
  });
});
