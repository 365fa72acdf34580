import { createHash } from 'node:crypto';
import type { TenantSettings } from '@vantageedge/shared/domain/gateway-config';

/**
 * What a token verified for a tenant is tagged with in the token cache (its entry's `verifiedBy`): all
 * that the tenant's snapshot contributes to whether the token is valid there and to the identity it
 * yields. Versions of a tenant with the same such settings give equal tags, so a snapshot that edits
 * routes, origins or API keys keeps the tenant's verified tokens; one that changes any of these has
 * each token checked again once. The clock tolerance, the required claims and the accepted algorithms
 * (those of the key) are the gateway's own, the same for every snapshot.
 */
export interface VerificationTags {
  /** Clerk session tokens: Clerk's keys are the replica's; an identity holds its org's permissions only at that org's tenant. */
  readonly clerk: string;
  /** OIDC access tokens: the issuer (also the identity's namespace), the audience and the key set's URL. Null without OIDC. */
  readonly oidc: string | null;
  /** Service tokens: each service's id, keys and scopes, and the tenant's host names (the audiences accepted). */
  readonly service: string;
}

export function verificationTags(
  tenantId: string,
  clerkOrgId: string | null,
  settings: Pick<TenantSettings, 'oidc' | 'service_accounts'>,
  hostNames: readonly string[],
): VerificationTags {
  const { oidc } = settings;
  return {
    clerk: clerkOrgId === null ? 'clerk' : `clerk:${clerkOrgId}`,
    oidc: oidc === null ? null : `oidc:${tenantId}:${digest([oidc.issuer, oidc.audience, oidc.jwks_url])}`,
    service: `service:${tenantId}:${digest([settings.service_accounts, [...hostNames].sort()])}`,
  };
}

/** A short, fixed-length name for the settings: the tag is kept with every cached token. */
function digest(settings: unknown): string {
  return createHash('sha256').update(JSON.stringify(settings)).digest('base64url');
}
