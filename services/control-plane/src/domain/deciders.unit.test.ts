import { tenantSettings } from '@vantageedge/shared/domain/gateway-config';
import { describe, expect, it } from 'vitest';
import { apiKeyDecider } from './api-key.js';
import { type Decider, DomainError, type FoldableEvent } from './decision.js';
import { pathPatternProblem } from './path-pattern.js';
import { tenantDecider } from './tenant.js';
import { userDecider } from './user.js';

const at = (iso: string) => ({ occurred_at: iso });

/** Runs commands one after the other like the handler does, folding each decision's events. */
function given<State, Command>(decider: Decider<State, Command>, ...commands: Command[]): State {
  let state = decider.initialState();
  commands.forEach((command, i) => {
    for (const event of decider.decide(command, state).events) {
      state = decider.evolve(state, {
        ...event,
        metadata: at(`2026-01-0${i + 1}T00:00:00.000Z`),
      } as FoldableEvent);
    }
  });
  return state;
}

const tenant = {
  tenant_id: 't1',
  name: 'acme',
  subdomain: 'acme',
  clerk_org_id: 'org_1',
  settings: tenantSettings.parse({}),
};

describe('tenant decider', () => {
  it('claims the subdomain and the Clerk org on create', () => {
    const decision = tenantDecider.decide({ type: 'CreateTenant', tenant }, tenantDecider.initialState());
    expect(decision.events).toEqual([{ type: 'TenantCreated', data: tenant }]);
    expect(decision.reservations).toEqual({ claim: ['subdomain:acme', 'clerk_org:org_1'] });
  });

  it('moves reservations when the subdomain changes and names only the changed fields', () => {
    const state = given(tenantDecider, { type: 'CreateTenant', tenant });
    const decision = tenantDecider.decide(
      { type: 'UpdateTenant', changes: { subdomain: 'acme2', name: 'acme' } },
      state,
    );
    expect(decision.events).toEqual([
      { type: 'TenantUpdated', data: { ...tenant, subdomain: 'acme2', changed_fields: ['subdomain'] } },
    ]);
    expect(decision.reservations).toEqual({ claim: ['subdomain:acme2'], release: ['subdomain:acme'] });
  });

  it('treats settings with keys in another order as unchanged (jsonb reorders keys)', () => {
    const state = given(tenantDecider, { type: 'CreateTenant', tenant });
    const reordered = JSON.parse(
      JSON.stringify({
        ip_rules: null,
        service_accounts: [],
        authorized_parties: null,
        oidc: null,
        rate_limit: null,
      }),
    );
    expect(
      tenantDecider.decide({ type: 'UpdateTenant', changes: { settings: reordered } }, state).events,
    ).toEqual([]);
  });

  it('refuses to create twice and to change a deleted tenant; delete frees the unique values', () => {
    const state = given(tenantDecider, { type: 'CreateTenant', tenant });
    expect(() => tenantDecider.decide({ type: 'CreateTenant', tenant }, state)).toThrow(DomainError);
    const deletion = tenantDecider.decide({ type: 'DeleteTenant' }, state);
    expect(deletion.reservations).toEqual({ release: ['subdomain:acme', 'clerk_org:org_1'] });
    const deleted = given(tenantDecider, { type: 'CreateTenant', tenant }, { type: 'DeleteTenant' });
    expect(deleted.status).toBe('deleted');
    expect(() => tenantDecider.decide({ type: 'UpdateTenant', changes: { name: 'x' } }, deleted)).toThrow(
      expect.objectContaining({ kind: 'not_found' }),
    );
  });

  it('keeps created_at and moves updated_at', () => {
    const state = given(
      tenantDecider,
      { type: 'CreateTenant', tenant },
      { type: 'UpdateTenant', changes: { name: 'renamed' } },
    );
    expect(state).toMatchObject({
      created_at: '2026-01-01T00:00:00.000Z',
      updated_at: '2026-01-02T00:00:00.000Z',
      data: { name: 'renamed' },
    });
  });
});

describe('user decider', () => {
  const owner = {
    user_id: 'u1',
    tenant_id: 't1',
    clerk_user_id: 'user_1',
    email: 'a@b.c',
    role: 'owner' as const,
  };

  it('never demotes or removes the last owner', () => {
    const state = given(userDecider, { type: 'CreateUser', user: owner });
    expect(() =>
      userDecider.decide({ type: 'ChangeUserRole', role: 'admin', otherOwners: 0 }, state),
    ).toThrow(expect.objectContaining({ kind: 'conflict', field: 'role' }));
    expect(() => userDecider.decide({ type: 'DeleteUser', otherOwners: 0 }, state)).toThrow(DomainError);
    expect(
      userDecider.decide({ type: 'ChangeUserRole', role: 'admin', otherOwners: 1 }, state).events,
    ).toHaveLength(1);
    expect(userDecider.decide({ type: 'DeleteUser', otherOwners: 1 }, state).reservations).toEqual({
      release: ['tenant_user:t1:user_1'],
    });
  });
});

describe('api key decider', () => {
  const key = {
    api_key_id: 'k1',
    tenant_id: 't1',
    name: 'ci',
    key_hash: 'a'.repeat(64),
    key_prefix: 've_live_abcd',
    scopes: [],
    expires_at: null,
  };

  it('claims the hash; rotates once; cannot rotate or revoke a revoked key', () => {
    const issued = apiKeyDecider.decide({ type: 'IssueApiKey', key }, apiKeyDecider.initialState());
    expect(issued.reservations).toEqual({ claim: [`api_key_hash:${'a'.repeat(64)}`] });
    const rotated = given(
      apiKeyDecider,
      { type: 'IssueApiKey', key },
      { type: 'RotateApiKey', replacedBy: 'k2', oldKeyExpiresAt: '2026-02-01T00:00:00.000Z' },
    );
    expect(rotated).toMatchObject({
      data: { replaced_by: 'k2', rotation_expires_at: '2026-02-01T00:00:00.000Z' },
    });
    expect(() =>
      apiKeyDecider.decide({ type: 'RotateApiKey', replacedBy: 'k3', oldKeyExpiresAt: 'x' }, rotated),
    ).toThrow(DomainError);
    const revoked = given(
      apiKeyDecider,
      { type: 'IssueApiKey', key },
      { type: 'RevokeApiKey', reason: null },
    );
    expect(revoked).toMatchObject({ data: { revoked_at: '2026-01-02T00:00:00.000Z' } });
    expect(() => apiKeyDecider.decide({ type: 'RevokeApiKey', reason: null }, revoked)).toThrow(DomainError);
    expect(() =>
      apiKeyDecider.decide({ type: 'RotateApiKey', replacedBy: 'k3', oldKeyExpiresAt: 'x' }, revoked),
    ).toThrow(DomainError);
  });
});

describe('path patterns', () => {
  it.each([
    '/',
    '/api/users/*',
    '/api/users/:id',
    '/api/public/status',
    '/v1/:org/items/:item_id',
    '/a.b~c-d',
  ])('accepts %s', (pattern) => expect(pathPatternProblem(pattern)).toBeNull());
  it.each([
    '',
    'api',
    '/api/*/x',
    '/api//x',
    '/api/',
    '/a/:',
    '/a/:1x',
    '/a/:id/:id',
    '/a b',
    '/a?b',
    '/a#b',
  ])('rejects %s', (pattern) => expect(pathPatternProblem(pattern)).not.toBeNull());
});
