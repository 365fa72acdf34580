import type { TenantState } from '@vantageedge/shared/domain/events';
import { reservation } from '@vantageedge/shared/domain/events';
import { applyChanges } from './changes.js';
import {
  type Changes,
  type Decider,
  type Decision,
  DomainError,
  type Lifecycle,
  lifecycleEvolve,
  live,
} from './decision.js';

export type Tenant = Lifecycle<TenantState>;

export type TenantCommand =
  | { type: 'CreateTenant'; tenant: TenantState }
  | { type: 'UpdateTenant'; changes: Changes<Omit<TenantState, 'tenant_id'>> }
  | { type: 'DeleteTenant' };

function decide(command: TenantCommand, state: Tenant): Decision {
  switch (command.type) {
    case 'CreateTenant': {
      if (state.status !== 'absent') throw new DomainError('conflict', 'tenant already exists');
      const { tenant } = command;
      return {
        events: [{ type: 'TenantCreated', data: tenant }],
        reservations: {
          claim: [
            reservation.subdomain(tenant.subdomain),
            ...(tenant.clerk_org_id ? [reservation.clerkOrg(tenant.clerk_org_id)] : []),
          ],
        },
      };
    }
    case 'UpdateTenant': {
      const current = live(state, 'tenant').data;
      const { next, changedFields } = applyChanges(current, command.changes);
      if (changedFields.length === 0) return { events: [] };
      const claim: string[] = [];
      const release: string[] = [];
      if (next.subdomain !== current.subdomain) {
        claim.push(reservation.subdomain(next.subdomain));
        release.push(reservation.subdomain(current.subdomain));
      }
      if (next.clerk_org_id !== current.clerk_org_id) {
        if (next.clerk_org_id) claim.push(reservation.clerkOrg(next.clerk_org_id));
        if (current.clerk_org_id) release.push(reservation.clerkOrg(current.clerk_org_id));
      }
      return {
        events: [{ type: 'TenantUpdated', data: { ...next, changed_fields: changedFields } }],
        reservations: { claim, release },
      };
    }
    case 'DeleteTenant': {
      const current = live(state, 'tenant').data;
      // The subdomain and the Clerk org become free for a new tenant.
      return {
        events: [{ type: 'TenantDeleted', data: { tenant_id: current.tenant_id } }],
        reservations: {
          release: [
            reservation.subdomain(current.subdomain),
            ...(current.clerk_org_id ? [reservation.clerkOrg(current.clerk_org_id)] : []),
          ],
        },
      };
    }
  }
}

export const tenantDecider: Decider<Tenant, TenantCommand> = {
  initialState: () => ({ status: 'absent' }),
  evolve: lifecycleEvolve({ created: 'TenantCreated', changed: 'TenantUpdated', deleted: 'TenantDeleted' }),
  decide,
};
