import type { UserState } from '@vantageedge/shared/domain/events';
import { tenantSettings } from '@vantageedge/shared/domain/gateway-config';
import type { RecordedEvent } from '@vantageedge/shared/event-store/port';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { tenantDomainsDecider } from '../domain/custom-domain.js';
import { memberOf, tenantDecider } from '../domain/tenant.js';
import { fold } from './handle-command.js';

/**
 * Every command reads and folds its tenant's stream (authorization, requireLiveTenant, a route's
 * hosts), which holds every member the tenant ever had: folding it must stay linear in its events.
 */

const MEMBERS = 1000;

function tenantStream(): RecordedEvent[] {
  const metadata = {
    actor: 'user_platform',
    tenant_id: 't1',
    correlation_id: 'r',
    causation_id: null,
    occurred_at: '2026-01-01T00:00:00.000Z',
    schema_version: 1,
  };
  const event = (revision: number, type: string, data: object): RecordedEvent => ({
    id: `e${revision}`,
    type,
    stream: 'tenant-t1',
    revision: BigInt(revision),
    position: BigInt(revision + 1),
    storedBytes: 512,
    data,
    metadata,
  });
  const events = [
    event(0, 'TenantCreated', {
      tenant_id: 't1',
      name: 'acme',
      subdomain: 'acme',
      clerk_org_id: null,
      settings: tenantSettings.parse({}),
    }),
  ];
  for (let index = 0; index < MEMBERS; index++) {
    const user: UserState = {
      user_id: `u${index}`,
      tenant_id: 't1',
      clerk_user_id: `user_${index}`,
      email: `${index}@example.com`,
      role: 'member',
    };
    events.push(event(events.length, 'UserCreated', user));
  }
  events.push(event(events.length, 'UserDeleted', { user_id: 'u7', tenant_id: 't1' }));
  return events;
}

/** Entries put into Maps while `work` runs (copying a Map of n members puts n). */
function mapEntriesPut(work: () => void): number {
  const set = vi.spyOn(Map.prototype, 'set');
  work();
  const calls = set.mock.calls.length;
  set.mockRestore();
  return calls;
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('folding a tenant stream of 1,000 members', () => {
  it('puts a number of map entries linear in the stream, not one copy of the members per event', () => {
    const events = tenantStream();
    let members = 0;
    const puts = mapEntriesPut(() => {
      const tenant = fold(tenantDecider, events);
      members = tenant.members.byId.size;
    });
    expect(members).toBe(MEMBERS);
    expect(puts).toBeLessThanOrEqual(4 * events.length);
  });

  it('does the same for the tenant-and-domains fold (a route with hosts, custom domains, certificates)', () => {
    const events = tenantStream();
    const puts = mapEntriesPut(() => {
      fold(tenantDomainsDecider, events);
    });
    expect(puts).toBeLessThanOrEqual(4 * events.length);
  });

  it('folds to the state folding event by event gives', () => {
    const events = tenantStream();
    const batch = fold(tenantDecider, events);
    let single = tenantDecider.initialState();
    for (const event of events) single = tenantDecider.evolve(single, event as never);
    expect(batch.status).toBe(single.status);
    expect([...batch.members.byId.entries()]).toEqual([...single.members.byId.entries()]);
    expect(memberOf(batch, 'u7').status).toBe('deleted');
    expect(memberOf(batch, 'u8').status).toBe('active');
    const withDomains = fold(tenantDomainsDecider, events);
    expect([...withDomains.tenant.members.byId.entries()]).toEqual([...single.members.byId.entries()]);
  });
});
