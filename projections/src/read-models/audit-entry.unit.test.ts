import type { RecordedEvent } from '@vantageedge/shared/event-store/port';
import { describe, expect, it } from 'vitest';
import { redactSecrets, resourceOfStream, toAuditEntry } from './audit-entry.js';

const metadata = {
  actor: 'user_alice',
  tenant_id: '5a0c6c1e-55b4-4a31-9d53-1f8b9f3c2a11',
  correlation_id: 'req-1',
  causation_id: null,
  occurred_at: '2026-01-01T00:00:00.000Z',
  schema_version: 1,
};

describe('audit entries', () => {
  it('never carries the api key hash', () => {
    const event: RecordedEvent = {
      id: '0b9f7f5e-6d0c-4c49-8d0c-2f5b6a4b9a01',
      type: 'ApiKeyIssued',
      stream: 'apikey-7c1f4f0e-3a5b-4e0c-9a41-6c2a0e9d5b11',
      revision: 0n,
      position: 42n,
      storedBytes: 512,
      data: {
        api_key_id: '7c1f4f0e-3a5b-4e0c-9a41-6c2a0e9d5b11',
        tenant_id: metadata.tenant_id,
        name: 'prod',
        key_hash: 'a'.repeat(64),
        key_prefix: 've_live_ab12',
        scopes: ['read'],
        expires_at: null,
      },
      metadata,
    };
    const entry = toAuditEntry(event);
    expect(JSON.stringify(entry.data)).not.toContain('a'.repeat(64));
    expect(entry).toMatchObject({
      resource_type: 'api_key',
      resource_id: '7c1f4f0e-3a5b-4e0c-9a41-6c2a0e9d5b11',
      tenant_id: metadata.tenant_id,
      actor: 'user_alice',
      event_type: 'ApiKeyIssued',
      data: { name: 'prod', key_prefix: 've_live_ab12', scopes: ['read'] },
    });
  });

  it('drops private members of service JWKs but keeps the public ones', () => {
    const redacted = redactSecrets({
      settings: { service_jwks: [{ kty: 'RSA', n: 'modulus', e: 'AQAB', d: 'private', p: 'x', q: 'y' }] },
    });
    expect(redacted).toEqual({ settings: { service_jwks: [{ kty: 'RSA', n: 'modulus', e: 'AQAB' }] } });
    const accounts = redactSecrets({
      settings: { service_accounts: [{ id: 'svc', keys: [{ kty: 'EC', kid: 'k', x: 'x', d: 'private' }] }] },
    });
    expect(accounts).toEqual({
      settings: { service_accounts: [{ id: 'svc', keys: [{ kty: 'EC', kid: 'k', x: 'x' }] }] },
    });
  });

  it('names the resource after the stream, and the tenant after the data when metadata has none', () => {
    expect(resourceOfStream('route-1b2c')).toEqual({ type: 'route', id: '1b2c' });
    expect(resourceOfStream('tenant-5a0c6c1e-55b4-4a31-9d53-1f8b9f3c2a11')).toEqual({
      type: 'tenant',
      id: '5a0c6c1e-55b4-4a31-9d53-1f8b9f3c2a11',
    });
    const entry = toAuditEntry({
      id: '0b9f7f5e-6d0c-4c49-8d0c-2f5b6a4b9a02',
      type: 'TenantDeleted',
      stream: 'tenant-t1',
      revision: 3n,
      position: 9n,
      storedBytes: 512,
      data: { tenant_id: 't1' },
      metadata: { ...metadata, tenant_id: null },
    });
    expect(entry.tenant_id).toBe('t1');
  });

  it('names a user event after the user, whether it sits in its tenant stream or an older user stream', () => {
    const userId = '9d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6';
    const event = (stream: string): RecordedEvent => ({
      id: '0b9f7f5e-6d0c-4c49-8d0c-2f5b6a4b9a03',
      type: 'UserRoleChanged',
      stream,
      revision: 4n,
      position: 11n,
      storedBytes: 512,
      data: {
        user_id: userId,
        tenant_id: metadata.tenant_id,
        clerk_user_id: 'user_bob',
        email: 'bob@example.com',
        role: 'admin',
        changed_fields: ['role'],
      },
      metadata,
    });
    const inTenantStream = toAuditEntry(event(`tenant-${metadata.tenant_id}`));
    const inUserStream = toAuditEntry(event(`user-${userId}`));
    expect(inTenantStream).toMatchObject({ resource_type: 'user', resource_id: userId });
    expect({ ...inTenantStream, stream: '' }).toEqual({ ...inUserStream, stream: '' });
  });

  it('shows the values of a route’s credential request headers as <redacted>, keeping the others', () => {
    const routeId = '3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f';
    const headers = {
      set: { Authorization: 'Bearer origin-secret', 'x-tenant': 'acme', 'X-Session_Token': 's3' },
      add: { 'x-api-key': 'k-123', 'x-trace': 'on', cookie: 'sid=1' },
      remove: ['server'],
    };
    const event = (type: 'RouteCreated' | 'RouteUpdated', extra: object): RecordedEvent => ({
      id: '0b9f7f5e-6d0c-4c49-8d0c-2f5b6a4b9a04',
      type,
      stream: `route-${routeId}`,
      revision: 0n,
      position: 12n,
      storedBytes: 512,
      data: { route_id: routeId, tenant_id: metadata.tenant_id, request_headers: headers, ...extra },
      metadata,
    });
    const created = event('RouteCreated', {});
    for (const entry of [
      toAuditEntry(created),
      toAuditEntry(event('RouteUpdated', { changed_fields: ['request_headers'] })),
    ]) {
      const text = JSON.stringify(entry.data);
      for (const secret of ['origin-secret', 'k-123', 'sid=1', '"s3"']) expect(text).not.toContain(secret);
      expect((entry.data as { request_headers: unknown }).request_headers).toEqual({
        set: { Authorization: '<redacted>', 'x-tenant': 'acme', 'X-Session_Token': '<redacted>' },
        add: { 'x-api-key': '<redacted>', 'x-trace': 'on', cookie: '<redacted>' },
        remove: ['server'],
      });
    }
    // The event itself is left as it was: the event log keeps the value.
    expect(created.data).toMatchObject({
      request_headers: { set: { Authorization: 'Bearer origin-secret' } },
    });
  });
  it('shows the values of a route’s credential query parameters as <redacted>, keeping the others', () => {
    const routeId = '4d5e6f7a-8b9c-4dae-8f0a-2b3c4d5e6f7a';
    const query = {
      set: { api_key: 'qk-123', format: 'json', 'X-Amz-Signature': 'sig-abc' },
      add: { access_token: 'qt-456', page: '2' },
      remove: ['key'],
    };
    const event = (type: 'RouteCreated' | 'RouteUpdated', extra: object): RecordedEvent => ({
      id: '0b9f7f5e-6d0c-4c49-8d0c-2f5b6a4b9a05',
      type,
      stream: `route-${routeId}`,
      revision: 0n,
      position: 13n,
      storedBytes: 512,
      data: {
        route_id: routeId,
        tenant_id: metadata.tenant_id,
        query,
        match: { query: [{ name: 'key', equals: 'v' }] },
        ...extra,
      },
      metadata,
    });
    const created = event('RouteCreated', {});
    for (const entry of [
      toAuditEntry(created),
      toAuditEntry(event('RouteUpdated', { changed_fields: ['query'] })),
    ]) {
      const text = JSON.stringify(entry.data);
      for (const secret of ['qk-123', 'sig-abc', 'qt-456']) expect(text).not.toContain(secret);
      expect(entry.data).toMatchObject({
        query: {
          set: { api_key: '<redacted>', format: 'json', 'X-Amz-Signature': '<redacted>' },
          add: { access_token: '<redacted>', page: '2' },
          remove: ['key'],
        },
        match: { query: [{ name: 'key', equals: 'v' }] },
      });
    }
    expect(created.data).toMatchObject({ query: { set: { api_key: 'qk-123' } } });
  });
});
