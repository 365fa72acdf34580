import { snapshotTenantOf } from '@vantageedge/projections/snapshots/fold';
import type { ControlPlaneEvent, ControlPlaneEventType } from '@vantageedge/shared/domain/events';
import { describe, expect, it } from 'vitest';
import { CONFIG_EVENT_TYPES, summarize } from './config-history.js';

/** Every event type (the compiler holds the list complete). */
const EVERY_EVENT_TYPE: Record<ControlPlaneEventType, true> = {
  TenantCreated: true,
  TenantUpdated: true,
  TenantDeleted: true,
  UserCreated: true,
  UserRoleChanged: true,
  UserDeleted: true,
  OriginCreated: true,
  OriginUpdated: true,
  OriginDeleted: true,
  RouteCreated: true,
  RouteUpdated: true,
  RouteDeleted: true,
  ApiKeyIssued: true,
  ApiKeyRotated: true,
  ApiKeyRevoked: true,
  ApiKeyQuotaChanged: true,
  ApiKeyTagsChanged: true,
  CachePurgeRequested: true,
  ConfigRolledBack: true,
  CustomDomainCreated: true,
  CustomDomainVerified: true,
  CustomDomainDeleted: true,
  CertificateUploaded: true,
  CertificateKeyResealed: true,
  CertificateDeleted: true,
  TenantDroppedFromGateways: true,
  TenantDropRolledBack: true,
};

describe('the config history', () => {
  it('lists every event that changes what a live tenant’s gateways serve: each version they report', () => {
    const servedChanges = (Object.keys(EVERY_EVENT_TYPE) as ControlPlaneEventType[]).filter(
      (type) =>
        type !== 'TenantDeleted' &&
        snapshotTenantOf({ type, data: { tenant_id: 't' } } as unknown as ControlPlaneEvent) !== null,
    );
    expect(servedChanges).toContain('CertificateUploaded');
    expect([...CONFIG_EVENT_TYPES].sort()).toEqual([...servedChanges, 'ConfigRolledBack'].sort());
  });
});

describe('the config history summaries', () => {
  it("lists a key's quota change, as set, changed or removed", () => {
    expect(CONFIG_EVENT_TYPES).toContain('ApiKeyQuotaChanged');
    expect(summarize('ApiKeyQuotaChanged', { quota: { requests_per_day: 1000 } })).toBe(
      'API key quota set to 1000/day',
    );
    expect(
      summarize('ApiKeyQuotaChanged', { quota: { requests_per_day: 10, requests_per_month: 200 } }),
    ).toBe('API key quota set to 10/day, 200/month');
    expect(summarize('ApiKeyQuotaChanged', { quota: null })).toBe('API key quota removed');
  });

  it('names the domains of a certificate uploaded', () => {
    expect(summarize('CertificateUploaded', { domains: ['api.acme.test', 'www.acme.test'] })).toBe(
      'certificate for api.acme.test, www.acme.test uploaded',
    );
  });
});
