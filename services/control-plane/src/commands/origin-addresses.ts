import type { OriginAddressPolicy } from '@vantageedge/shared/net/origin-address-policy';
import type { TenantConfig } from '../config-history/tenant-config.js';
import { DomainError, type FieldIssue } from '../domain/errors.js';
import type { ConfigDocument } from '../schemas/config-document.js';

/** A URL the platform will connect to for a tenant, and the request field it came from. */
export interface ConfiguredUrl {
  readonly field: string;
  readonly url: string;
}

/**
 * Refuses URLs whose literal address the policy blocks (loopback, link-local, unspecified, the
 * platform's own listeners — in any spelling the URL parser accepts) with 400 origin_address_blocked
 * naming every offending field. Host names pass: the gateways check what they resolve to when they
 * connect.
 */
export function requireAllowedAddresses(policy: OriginAddressPolicy, urls: readonly ConfiguredUrl[]): void {
  const details = addressRefusals(policy, urls);
  if (details.length > 0) {
    throw new DomainError('invalid', 'the address is not allowed as an origin', details[0]?.field, {
      code: 'origin_address_blocked',
      issues: details,
    });
  }
}

/** The URLs whose literal address the policy blocks, each with why. */
export function addressRefusals(policy: OriginAddressPolicy, urls: readonly ConfiguredUrl[]): FieldIssue[] {
  const refusals: FieldIssue[] = [];
  for (const { field, url } of urls) {
    const refusal = policy.urlRefusal(url);
    if (refusal !== undefined) refusals.push({ field, issue: refusal });
  }
  return refusals;
}

/** The target fields of an origin body: the single `url` or the `targets` list. */
export function originTargetUrls(body: {
  url?: string | undefined;
  targets?: ReadonlyArray<{ url: string }> | undefined;
}): ConfiguredUrl[] {
  const urls: ConfiguredUrl[] = [];
  if (body.url !== undefined) urls.push({ field: 'url', url: body.url });
  for (const [index, target] of (body.targets ?? []).entries())
    urls.push({ field: `targets.${index}.url`, url: target.url });
  return urls;
}

/**
 * The URLs of a config document that the tenant's config does not have yet, each named by its place in
 * the document (`origins.1.url`, `tenant.settings.oidc.jwks_url`): the commands an apply runs name only
 * their own body's fields. A URL the config has already (recorded by an earlier release, or before
 * ORIGIN_BLOCKED_CIDRS grew) is left to the command that would change it, as a PATCH not naming it is.
 */
export function newConfigDocumentUrls(document: ConfigDocument, current: TenantConfig): ConfiguredUrl[] {
  const kept = new Set(current.origins.flatMap((origin) => origin.targets.map((target) => target.url)));
  const currentJwksUrl = current.tenant.settings.oidc?.jwks_url;
  if (currentJwksUrl !== undefined) kept.add(currentJwksUrl);
  const jwksUrl = document.tenant.settings?.oidc?.jwks_url;
  const urls: ConfiguredUrl[] =
    jwksUrl === undefined ? [] : [{ field: 'tenant.settings.oidc.jwks_url', url: jwksUrl }];
  for (const [index, origin] of document.origins.entries()) {
    for (const { field, url } of originTargetUrls(origin))
      urls.push({ field: `origins.${index}.${field}`, url });
  }
  return urls.filter(({ url }) => !kept.has(url));
}
