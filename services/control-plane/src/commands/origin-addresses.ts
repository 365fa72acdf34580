import type { OriginAddressPolicy } from '@vantageedge/shared/net/origin-address-policy';
import { DomainError, type FieldIssue } from '../domain/errors.js';

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
  const details: FieldIssue[] = [];
  for (const { field, url } of urls) {
    const refusal = policy.urlRefusal(url);
    if (refusal !== undefined) details.push({ field, issue: refusal });
  }
  if (details.length > 0) {
    throw new DomainError('invalid', 'the address is not allowed as an origin', details[0]?.field, {
      code: 'origin_address_blocked',
      issues: details,
    });
  }
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
