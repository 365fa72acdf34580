import { randomBytes, randomUUID } from 'node:crypto';
import { reservation, streamName } from '@vantageedge/shared/domain/events';
import { canonicalCustomDomain, verificationRecordName } from '@vantageedge/shared/domain/hostname';
import { type EventMetadata, UniquenessViolationError } from '@vantageedge/shared/event-store/port';
import { DEFAULT_PLATFORM_BASE_DOMAINS } from '@vantageedge/shared/settings/common-settings';
import {
  type CustomDomain,
  type CustomDomainCommand,
  CustomDomainVerificationError,
  type TenantDomains,
  tenantDomainsDecider,
  verificationExpiresAt,
} from '../domain/custom-domain.js';
import { DomainError, forbidden, notFound } from '../domain/errors.js';
import type { CreateCustomDomainBody } from '../schemas/requests.js';
import type { CustomDomainResource } from '../schemas/resources.js';
import {
  type CommandContext,
  type CommandDeps,
  type CommandOutcome,
  eventMetadata,
  requireAccess,
  tenantOf,
} from './context.js';
import { createTxtLookup, DnsLookupError, type LookupTxt } from './dns-txt.js';
import { type HandledCommand, handleCommand } from './handle-command.js';
import { foldStream } from './stream-folds.js';
import { requireRoomForCustomDomain, underTenantLock } from './tenant-limits.js';

/** What the custom-domain commands need besides the usual dependencies. */
export interface CustomDomainDeps {
  /** PLATFORM_BASE_DOMAINS: a custom domain may not be one of them or under one. */
  baseDomains: readonly string[];
  /** TXT lookups for ownership proofs (DNS_RESOLVER). */
  lookupTxt: LookupTxt;
}

let defaults: CustomDomainDeps | undefined;
/** The configured dependencies, or the defaults (default base domains, the system's resolvers). */
function customDomainDeps(deps: CommandDeps): CustomDomainDeps {
  if (deps.customDomains) return deps.customDomains;
  defaults ??= { baseDomains: DEFAULT_PLATFORM_BASE_DOMAINS, lookupTxt: createTxtLookup() };
  return defaults;
}

export function customDomainView(tenantId: string, domain: CustomDomain): CustomDomainResource {
  return {
    id: domain.custom_domain_id,
    tenant_id: tenantId,
    domain: domain.domain,
    status: domain.status,
    verification: {
      type: 'dns-txt',
      name: verificationRecordName(domain.domain),
      value: domain.verification_token,
      expires_at: domain.status === 'pending' ? verificationExpiresAt(domain).toISOString() : null,
    },
    verified_at: domain.verified_at,
    verification_method: domain.verification_method,
    created_at: domain.created_at,
    updated_at: domain.updated_at,
  };
}

function outcome(
  tenantId: string,
  result: HandledCommand<TenantDomains>,
  domain: string,
): CommandOutcome<CustomDomainResource> {
  const found = result.state.domains.get(domain);
  if (!found || result.revision === null || result.position === null)
    throw notFound('custom domain', 'domain');
  return {
    resource: customDomainView(tenantId, found),
    revision: result.revision,
    position: result.position,
  };
}

/** The `:domain` of a path, canonicalised; a name that cannot be a custom domain is simply not found. */
export function domainParam(raw: string): string {
  const result = canonicalCustomDomain(raw);
  if (!result.ok) {
    throw new DomainError('not_found', 'custom domain not found', 'domain', { issue: result.issue });
  }
  return result.hostname;
}

/**
 * Runs a command on the tenant's stream. A command on one domain (`addressed`) compares If-Match with
 * that domain's own last revision (its ETag, and its revision in the list): the tenant's other domains
 * and settings changing since leave it current, the domain removed and claimed again does not.
 */
async function run(
  deps: CommandDeps,
  ctx: CommandContext,
  tenantId: string,
  build: (state: TenantDomains) => Promise<CustomDomainCommand>,
  addressed?: string,
): Promise<HandledCommand<TenantDomains>> {
  try {
    return await handleCommand({
      store: deps.store,
      snapshotGuard: deps.snapshotGuard,
      commandBudget: deps.commandBudget,
      stream: streamName.tenant(tenantId),
      decider: tenantDomainsDecider,
      ifMatch: ctx.ifMatch,
      ...(addressed === undefined
        ? {}
        : { revisionOf: (state: TenantDomains) => state.domains.get(addressed)?.revision ?? null }),
      metadata: () => eventMetadata(deps, ctx, tenantId),
      command: async (state) => {
        // Access first: another tenant's caller learns nothing of this tenant, deleted or not.
        await requireAccess(deps, ctx.caller, tenantId, 'write', () => notFound('tenant', 'id'));
        if (state.tenant.status !== 'active') throw notFound('tenant', 'id');
        return build(state);
      },
    });
  } catch (error) {
    if (error instanceof CustomDomainVerificationError) {
      throw new DomainError('unprocessable', error.message, 'domain', { code: 'domain_verification_failed' });
    }
    throw error;
  }
}

/**
 * Claims a host name for the tenant (pending until verified). A pending claim reserves nothing: the name
 * is reserved platform-wide when a claim of it is verified, and a claim of a name another tenant holds
 * verified is a 409. A platform admin may pass `verified: true` to assign it.
 */
export async function createCustomDomain(
  deps: CommandDeps,
  ctx: CommandContext,
  tenantId: string,
  body: CreateCustomDomainBody,
): Promise<CommandOutcome<CustomDomainResource>> {
  const claim = () =>
    run(deps, ctx, tenantId, async (state) => {
      // After access: to a caller who cannot see the tenant, it does not exist.
      if (body.verified && !ctx.caller.isPlatformAdmin) {
        throw forbidden(
          'only platform admins may assign a domain without verification',
          'verified',
          'platform admins only',
        );
      }
      requireRoomForCustomDomain(deps, state.domains.size);
      return {
        type: 'CreateCustomDomain' as const,
        claim: {
          custom_domain_id: randomUUID(),
          domain: body.domain,
          verification_token: `vantageedge-verify=${randomBytes(24).toString('base64url')}`,
        },
        assignedByPlatformAdmin: body.verified,
        baseDomains: customDomainDeps(deps).baseDomains,
        verifiedElsewhere: await verifiedByAnotherTenant(deps, tenantId, body.domain),
      };
    });
  // Access first: a caller who may not write the tenant takes no lock of it. Then under the tenant's
  // lock, as every counted create: claims sent at once are counted one after another (each a 201 or a
  // 422), not raced on the revision of the stream they share.
  await requireAccess(deps, ctx.caller, tenantId, 'write', () => notFound('tenant', 'id'));
  const claimed = await underTenantLock(deps, tenantId, () =>
    withPendingClaimReleased(deps, tenantId, claim),
  );
  return outcome(tenantId, claimed, body.domain);
}

/** The actor recorded for what the platform does by itself, not on a caller's behalf. */
const PLATFORM_ACTOR = 'platform';
const CUSTOM_DOMAIN_RESERVATION = reservation.customDomain('');

/**
 * Metadata of an event the platform writes by itself into a tenant's stream: nothing of the request that
 * prompted it (another tenant's request id, causation, idempotency attempt) reaches that tenant's log.
 */
function platformMetadata(deps: Pick<CommandDeps, 'clock'>, tenantId: string | null): EventMetadata {
  return {
    actor: PLATFORM_ACTOR,
    tenant_id: tenantId,
    correlation_id: randomUUID(),
    causation_id: null,
    occurred_at: deps.clock().toISOString(),
    schema_version: 1,
  };
}

/**
 * Whether another tenant holds `domain` verified. A name is reserved by its verified claim; a claim
 * recorded while pending claims still reserved their names may hold it pending, which counts for nothing.
 */
async function verifiedByAnotherTenant(
  deps: CommandDeps,
  tenantId: string,
  domain: string,
): Promise<boolean> {
  const holder = await deps.store.reservationHolder(reservation.customDomain(domain));
  if (holder === null || holder === streamName.tenant(tenantId)) return false;
  const held = await foldStream(deps.store, holder, tenantDomainsDecider, deps.streamFolds);
  return held.domains.get(domain)?.status !== 'pending';
}

/**
 * Runs a command that reserves a name (a verification, a platform admin's assignment); when another
 * tenant's pending claim holds the name, removes that claim and runs it once more.
 */
async function withPendingClaimReleased(
  deps: CommandDeps,
  tenantId: string,
  command: () => Promise<HandledCommand<TenantDomains>>,
): Promise<HandledCommand<TenantDomains>> {
  try {
    return await command();
  } catch (error) {
    if (!(await releasedPendingClaim(deps, tenantId, error))) throw error;
    return await command();
  }
}

/**
 * When `error` is a reservation of a name refused because another tenant's claim holds it, and that
 * claim is pending (recorded while pending claims reserved their names): removes that claim (in its
 * tenant's stream, by the platform — the claimant is neither named nor charged there) and says so. A
 * claim never proven keeps the name from no tenant that proves it.
 */
async function releasedPendingClaim(deps: CommandDeps, tenantId: string, error: unknown): Promise<boolean> {
  const held = error instanceof DomainError ? error.cause : undefined;
  if (
    !(held instanceof UniquenessViolationError) ||
    !held.value.startsWith(CUSTOM_DOMAIN_RESERVATION) ||
    held.heldBy === undefined ||
    held.heldBy === streamName.tenant(tenantId)
  ) {
    return false;
  }
  const domain = held.value.slice(CUSTOM_DOMAIN_RESERVATION.length);
  const result = await handleCommand({
    store: deps.store,
    snapshotGuard: deps.snapshotGuard,
    // The platform's doing: neither tenant's command budget pays for one small event.
    commandBudget: undefined,
    stream: held.heldBy,
    decider: tenantDomainsDecider,
    metadata: (state) => platformMetadata(deps, tenantOf(state.tenant)),
    command: async () => ({ type: 'ReleasePendingClaim' as const, domain }),
  });
  return !result.state.domains.has(domain);
}

/**
 * Looks up `_vantageedge-challenge.<domain>` and marks the domain verified when one of its TXT values
 * is the token issued for this tenant and domain; 422 domain_verification_failed (with the reason)
 * otherwise, changing nothing. Verifying a verified domain answers it unchanged.
 */
export async function verifyCustomDomain(
  deps: CommandDeps,
  ctx: CommandContext,
  tenantId: string,
  domain: string,
): Promise<CommandOutcome<CustomDomainResource>> {
  const verify = () =>
    run(
      deps,
      ctx,
      tenantId,
      async (state) => {
        const current = state.domains.get(domain);
        if (!current) throw notFound('custom domain', 'domain');
        const now = deps.clock().toISOString();
        if (current.status === 'verified') {
          return { type: 'VerifyCustomDomain' as const, domain, txtValues: [], now };
        }
        if (Date.parse(now) > verificationExpiresAt(current).getTime()) {
          // Expired: the decider refuses it, no lookup needed.
          return { type: 'VerifyCustomDomain' as const, domain, txtValues: [], now };
        }
        const name = verificationRecordName(domain);
        let txtValues: string[];
        try {
          txtValues = await customDomainDeps(deps).lookupTxt(name);
        } catch (error) {
          if (!(error instanceof DnsLookupError)) throw error;
          throw new DomainError('unprocessable', `${error.message}; try again later`, 'domain', {
            code: 'domain_verification_failed',
            issue: `looking up TXT ${name} failed (${error.code})`,
          });
        }
        return { type: 'VerifyCustomDomain' as const, domain, txtValues, now };
      },
      domain,
    );
  return outcome(tenantId, await withPendingClaimReleased(deps, tenantId, verify), domain);
}

/** Removes the domain: it stops serving on every replica and its name is free for any tenant. */
export async function deleteCustomDomain(
  deps: CommandDeps,
  ctx: CommandContext,
  tenantId: string,
  domain: string,
): Promise<CommandOutcome<{ id: string; tenant_id: string }>> {
  let removedId = '';
  const result = await run(
    deps,
    ctx,
    tenantId,
    async (state) => {
      const current = state.domains.get(domain);
      if (!current) throw notFound('custom domain', 'domain');
      removedId = current.custom_domain_id;
      return { type: 'DeleteCustomDomain' as const, domain };
    },
    domain,
  );
  if (result.revision === null || result.position === null) throw notFound('custom domain', 'domain');
  return {
    resource: { id: removedId, tenant_id: tenantId },
    revision: result.revision,
    position: result.position,
  };
}
