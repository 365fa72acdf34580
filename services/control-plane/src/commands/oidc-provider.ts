import { namesClerkInstance } from '@vantageedge/shared/settings/clerk-issuer';
import { DomainError, type FieldIssue } from '../domain/errors.js';

/** The parts of a tenant's OIDC provider that say who signs its tokens. */
interface OidcProviderUrls {
  readonly issuer: string;
  readonly jwks_url: string;
}

/**
 * Refuses a tenant OIDC provider that is the platform's Clerk instance (its issuer, or a key-set URL on
 * its Frontend API host, in any spelling) with 400 oidc_provider_is_platform naming each field:
 * gateways would take every platform user's Clerk token on the tenant's routes as the tenant's own
 * users' tokens, and pass them on to its origin. `at` is where the settings are in the request.
 */
export function requireOwnOidcProvider(
  clerkIssuer: string | undefined,
  oidc: OidcProviderUrls | null | undefined,
  at: string,
): void {
  if (clerkIssuer === undefined || oidc == null) return;
  const issues: FieldIssue[] = [];
  const issue =
    "names the platform's own Clerk instance, which signs every platform user's tokens: use the tenant's own identity provider";
  if (namesClerkInstance(oidc.issuer, clerkIssuer)) issues.push({ field: `${at}.oidc.issuer`, issue });
  if (namesClerkInstance(oidc.jwks_url, clerkIssuer)) issues.push({ field: `${at}.oidc.jwks_url`, issue });
  const first = issues[0];
  if (first === undefined) return;
  throw new DomainError(
    'invalid',
    "the OIDC provider may not be the platform's own Clerk instance",
    first.field,
    { code: 'oidc_provider_is_platform', issues },
  );
}
