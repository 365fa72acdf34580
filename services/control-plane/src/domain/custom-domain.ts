import type {
  CustomDomainClaim,
  CustomDomainVerificationMethod,
  TenantState,
} from '@vantageedge/shared/domain/events';
import { reservation } from '@vantageedge/shared/domain/events';
import {
  isUnderBaseDomain,
  MAX_HOSTNAME_LENGTH,
  verificationRecordName,
} from '@vantageedge/shared/domain/hostname';
import { type Decider, type Decision, DomainError, type FoldableEvent, live } from './decision.js';
import { type Tenant, tenantDecider } from './tenant.js';

/**
 * A tenant's custom domains. They live in the tenant's own stream, so the uniqueness reservation
 * `custom_domain:<domain>` is held by the tenant and released with it; the tenant's other commands
 * (tenantDecider) fold the same stream and simply skip these events.
 *
 * Lifecycle: claimed (pending: it serves nothing and holds no name, so several tenants may claim one
 * name) → verified (a TXT record proved ownership, or a platform admin assigned it: the name is now
 * reserved for the tenant platform-wide, and only now it reaches the gateways) → removed (the name is
 * free again). The first tenant to prove control of a name gets it: a claim anyone can make keeps it
 * from nobody. Claims recorded before pending claims stopped holding names may still hold theirs:
 * a proof, or a platform admin's assignment, removes such a claim (ReleasePendingClaim).
 */

export const MAX_CUSTOM_DOMAINS_PER_TENANT = 50;
/**
 * How long a claim's verification value may prove it (Cloudflare's custom hostnames: 7 days). A value
 * issued long ago may be sitting in a zone the tenant no longer controls; past this a pending claim
 * is no longer verifiable: removed and claimed again, it gets a new value.
 */
export const PENDING_VERIFICATION_DAYS = 7;
const PENDING_VERIFICATION_MS = PENDING_VERIFICATION_DAYS * 24 * 60 * 60 * 1000;

/** When a pending claim's verification value stops proving it. */
export function verificationExpiresAt(domain: Pick<CustomDomain, 'created_at'>): Date {
  return new Date(Date.parse(domain.created_at) + PENDING_VERIFICATION_MS);
}
/** The longest domain whose `_vantageedge-challenge.<domain>` is still a DNS name (253 characters). */
const MAX_VERIFIABLE_DOMAIN_LENGTH = MAX_HOSTNAME_LENGTH - verificationRecordName('').length;

export interface CustomDomain {
  custom_domain_id: string;
  domain: string;
  verification_token: string;
  status: 'pending' | 'verified';
  verified_at: string | null;
  verification_method: CustomDomainVerificationMethod | null;
  created_at: string;
  updated_at: string;
  /** The tenant stream's revision at the domain's last event: its ETag (absent for decided, unstored events). */
  revision?: bigint;
}

export interface TenantDomains {
  tenant: Tenant;
  /** By canonical domain. */
  domains: ReadonlyMap<string, CustomDomain>;
}

export type CustomDomainCommand =
  | {
      type: 'CreateCustomDomain';
      claim: Omit<CustomDomainClaim, 'tenant_id'>;
      /** A platform admin assigns the domain without a DNS proof. */
      assignedByPlatformAdmin: boolean;
      baseDomains: readonly string[];
      /** Another tenant holds the name verified: found by the handler before it decides. */
      verifiedElsewhere: boolean;
    }
  /** `txtValues`: what `_vantageedge-challenge.<domain>` holds `now` (looked up by the handler; ISO 8601). */
  | { type: 'VerifyCustomDomain'; domain: string; txtValues: readonly string[]; now: string }
  | { type: 'DeleteCustomDomain'; domain: string }
  /**
   * Another tenant proved control of the name (or a platform admin assigns it) while this tenant's
   * claim holds it: a pending claim is removed, its name freed; a verified one stays (no events).
   */
  | { type: 'ReleasePendingClaim'; domain: string }
  /** Deleting the tenant removes its domains and frees their names with the tenant's other values. */
  | { type: 'DeleteTenant' };

/** The TXT record does not (yet) hold the token issued for this tenant and domain. */
export class CustomDomainVerificationError extends Error {
  override readonly name = 'CustomDomainVerificationError';
}

function requireDomain(state: TenantDomains, domain: string): CustomDomain {
  const found = state.domains.get(domain);
  if (!found) throw new DomainError('not_found', 'custom domain not found', 'domain');
  return found;
}

/** The 409 of a name another tenant holds, as the reservation's own conflict reads (handle-command.ts). */
function claimedByAnotherTenant(): DomainError {
  return new DomainError('conflict', 'this domain is already claimed by another tenant', 'domain', {
    issue: 'already claimed by another tenant',
  });
}

function liveTenant(state: TenantDomains): TenantState {
  return live(state.tenant, 'tenant').data;
}

function decide(command: CustomDomainCommand, state: TenantDomains): Decision {
  switch (command.type) {
    case 'CreateCustomDomain': {
      const tenant = liveTenant(state);
      const { claim } = command;
      if (isUnderBaseDomain(claim.domain, command.baseDomains)) {
        throw new DomainError(
          'invalid',
          `${claim.domain} is a platform host (under ${command.baseDomains.join(', ')}): tenants get <subdomain>.<base domain> from their subdomain`,
          'domain',
        );
      }
      // Its TXT record name would be no DNS name: the claim could never be proven.
      if (!command.assignedByPlatformAdmin && claim.domain.length > MAX_VERIFIABLE_DOMAIN_LENGTH) {
        throw new DomainError(
          'invalid',
          `${claim.domain} cannot be verified: its TXT record name would be over ${MAX_HOSTNAME_LENGTH} characters`,
          'domain',
          { issue: `must be at most ${MAX_VERIFIABLE_DOMAIN_LENGTH} characters to be verified by DNS` },
        );
      }
      if (state.domains.has(claim.domain)) {
        throw new DomainError(
          'conflict',
          `${claim.domain} is already a custom domain of this tenant`,
          'domain',
        );
      }
      if (command.verifiedElsewhere) throw claimedByAnotherTenant();
      if (state.domains.size >= MAX_CUSTOM_DOMAINS_PER_TENANT) {
        throw new DomainError(
          'conflict',
          `a tenant has at most ${MAX_CUSTOM_DOMAINS_PER_TENANT} custom domains`,
          'domain',
        );
      }
      const added = { ...claim, tenant_id: tenant.tenant_id };
      return {
        events: [
          { type: 'CustomDomainCreated', data: added },
          ...(command.assignedByPlatformAdmin
            ? [
                {
                  type: 'CustomDomainVerified' as const,
                  data: {
                    tenant_id: tenant.tenant_id,
                    custom_domain_id: claim.custom_domain_id,
                    domain: claim.domain,
                    method: 'platform_admin' as const,
                  },
                },
              ]
            : []),
        ],
        // Only a verified name is reserved: a pending claim keeps it from no tenant that can prove it.
        ...(command.assignedByPlatformAdmin
          ? { reservations: { claim: [reservation.customDomain(claim.domain)] } }
          : {}),
      };
    }
    case 'VerifyCustomDomain': {
      const tenant = liveTenant(state);
      const domain = requireDomain(state, command.domain);
      if (domain.status === 'verified') return { events: [] };
      const expiresAt = verificationExpiresAt(domain);
      if (Date.parse(command.now) > expiresAt.getTime()) {
        throw new DomainError(
          'unprocessable',
          `the claim of ${domain.domain} was not verified within ${PENDING_VERIFICATION_DAYS} days: remove it and claim it again for a new verification value`,
          'domain',
          {
            code: 'domain_verification_expired',
            issue: `the verification value expired at ${expiresAt.toISOString()}`,
          },
        );
      }
      if (!command.txtValues.includes(domain.verification_token)) {
        throw new CustomDomainVerificationError(
          command.txtValues.length === 0
            ? 'no TXT record holds the verification value'
            : 'the TXT record does not hold the verification value issued for this tenant and domain',
        );
      }
      return {
        events: [
          {
            type: 'CustomDomainVerified',
            data: {
              tenant_id: tenant.tenant_id,
              custom_domain_id: domain.custom_domain_id,
              domain: domain.domain,
              method: 'dns_txt',
            },
          },
        ],
        reservations: { claim: [reservation.customDomain(domain.domain)] },
      };
    }
    case 'ReleasePendingClaim': {
      const domain = state.domains.get(command.domain);
      if (domain?.status !== 'pending' || state.tenant.status !== 'active') return { events: [] };
      return decide({ type: 'DeleteCustomDomain', domain: command.domain }, state);
    }
    case 'DeleteCustomDomain': {
      const tenant = liveTenant(state);
      const domain = requireDomain(state, command.domain);
      return {
        events: [
          {
            type: 'CustomDomainDeleted',
            data: {
              tenant_id: tenant.tenant_id,
              custom_domain_id: domain.custom_domain_id,
              domain: domain.domain,
            },
          },
        ],
        reservations: { release: [reservation.customDomain(domain.domain)] },
      };
    }
    case 'DeleteTenant': {
      const deletion = tenantDecider.decide({ type: 'DeleteTenant' }, state.tenant);
      const tenantId = liveTenant(state).tenant_id;
      const domains = [...state.domains.values()];
      return {
        events: [
          ...domains.map((domain) => ({
            type: 'CustomDomainDeleted' as const,
            data: { tenant_id: tenantId, custom_domain_id: domain.custom_domain_id, domain: domain.domain },
          })),
          ...deletion.events,
        ],
        reservations: {
          ...deletion.reservations,
          release: [
            ...(deletion.reservations?.release ?? []),
            ...domains.map((domain) => reservation.customDomain(domain.domain)),
          ],
        },
      };
    }
  }
}

const revisionOf = (event: FoldableEvent) =>
  event.revision === undefined ? {} : { revision: event.revision };

function evolve(state: TenantDomains, event: FoldableEvent): TenantDomains {
  const at = event.metadata.occurred_at;
  switch (event.type) {
    case 'CustomDomainCreated': {
      const domains = new Map(state.domains);
      domains.set(event.data.domain, {
        custom_domain_id: event.data.custom_domain_id,
        domain: event.data.domain,
        verification_token: event.data.verification_token,
        status: 'pending',
        verified_at: null,
        verification_method: null,
        created_at: at,
        updated_at: at,
        ...revisionOf(event),
      });
      return { ...state, domains };
    }
    case 'CustomDomainVerified': {
      const current = state.domains.get(event.data.domain);
      if (!current) return state;
      const domains = new Map(state.domains);
      domains.set(event.data.domain, {
        ...current,
        status: 'verified',
        verified_at: at,
        verification_method: event.data.method,
        updated_at: at,
        ...revisionOf(event),
      });
      return { ...state, domains };
    }
    case 'CustomDomainDeleted': {
      if (!state.domains.has(event.data.domain)) return state;
      const domains = new Map(state.domains);
      domains.delete(event.data.domain);
      return { ...state, domains };
    }
    default:
      return { ...state, tenant: tenantDecider.evolve(state.tenant, event) };
  }
}

const DOMAIN_EVENTS: ReadonlySet<string> = new Set([
  'CustomDomainCreated',
  'CustomDomainVerified',
  'CustomDomainDeleted',
]);

/**
 * The tenant's own events folded at once (tenantDecider.evolveAll: its members copied once). Neither
 * part reads the other, so the domains' events and the tenant's are folded apart, each in order.
 */
function evolveAll(state: TenantDomains, events: readonly FoldableEvent[]): TenantDomains {
  let next = state;
  const tenantEvents: FoldableEvent[] = [];
  for (const event of events) {
    if (DOMAIN_EVENTS.has(event.type)) next = evolve(next, event);
    else tenantEvents.push(event);
  }
  return { ...next, tenant: tenantDecider.evolveAll(next.tenant, tenantEvents) };
}

export const tenantDomainsDecider: Decider<TenantDomains, CustomDomainCommand> = {
  initialState: () => ({ tenant: tenantDecider.initialState(), domains: new Map() }),
  evolve,
  evolveAll,
  decide,
};
