import type { UserRole } from '@vantageedge/shared/domain/events';
import { describe, expect, it } from 'vitest';
import { createAuthorizer } from './authorize.js';
import type { Caller, TenantDirectory } from './caller.js';

const directory: TenantDirectory = {
  async tenantIdForOrg(orgId) {
    return ({ org_a: 'tenant-a', org_b: 'tenant-b' } as Record<string, string>)[orgId] ?? null;
  },
  async userRole(tenantId, clerkUserId) {
    const roles: Record<string, UserRole> = {
      'tenant-a:user_owner': 'owner',
      'tenant-a:user_admin': 'admin',
      'tenant-a:user_member': 'member',
      'tenant-a:user_viewer': 'viewer',
    };
    return roles[`${tenantId}:${clerkUserId}`] ?? null;
  },
};
const authorizer = createAuthorizer(directory);
const caller = (overrides: Partial<Caller>): Caller => ({
  userId: 'user_x',
  isPlatformAdmin: false,
  orgId: null,
  orgRole: null,
  ...overrides,
});

describe('authorization policy', () => {
  it.each([
    ['platform admin, any tenant', caller({ isPlatformAdmin: true }), 'tenant-b', 'write'],
    ['org admin of the tenant', caller({ orgId: 'org_a', orgRole: 'org:admin' }), 'tenant-a', 'write'],
    ['org member of the tenant', caller({ orgId: 'org_a', orgRole: 'org:member' }), 'tenant-a', 'read'],
    ['org admin of another tenant', caller({ orgId: 'org_a', orgRole: 'org:admin' }), 'tenant-b', 'none'],
    ['org admin of an unknown org', caller({ orgId: 'org_zzz', orgRole: 'org:admin' }), 'tenant-a', 'none'],
    ['tenant owner', caller({ userId: 'user_owner' }), 'tenant-a', 'write'],
    ['tenant admin', caller({ userId: 'user_admin' }), 'tenant-a', 'write'],
    ['tenant member', caller({ userId: 'user_member' }), 'tenant-a', 'read'],
    ['tenant viewer', caller({ userId: 'user_viewer' }), 'tenant-a', 'read'],
    ['tenant owner of A on B', caller({ userId: 'user_owner' }), 'tenant-b', 'none'],
    [
      'org member who is a tenant admin',
      caller({ userId: 'user_admin', orgId: 'org_a', orgRole: 'org:member' }),
      'tenant-a',
      'write',
    ],
    ['nobody', caller({}), 'tenant-a', 'none'],
  ] as const)('%s → %s', async (_name, who, tenant, expected) => {
    expect(await authorizer.access(who, tenant)).toBe(expected);
  });
});
