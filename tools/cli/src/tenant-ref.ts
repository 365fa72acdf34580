import { lookupHost } from '@vantageedge/shared/routing/host-lookup';
import { DEFAULT_PLATFORM_BASE_DOMAINS, domainList } from '@vantageedge/shared/settings/common-settings';
import { domainClaim, page, type TenantSummary, tenantSummary } from './answer-shapes.js';
import type { ApiClient } from './api-client.js';
import { CliError, EXIT } from './exit-codes.js';

/** `-t acme` or `-t <uuid>`: a tenant by subdomain or id, among the tenants the caller can see. */

export type { TenantSummary };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export async function resolveTenant(client: ApiClient, ref: string): Promise<TenantSummary> {
  if (UUID.test(ref)) return (await client.get(`/api/v1/tenants/${ref}`, tenantSummary)).body;
  const tenants = await client.list('/api/v1/tenants', tenantSummary);
  const found = tenants.find((tenant) => tenant.subdomain === ref);
  if (!found) throw new CliError(EXIT.notFound, `no tenant with subdomain or id ${ref}`);
  return found;
}

/**
 * The platform's base domains, as the gateways and the control plane read them:
 * $PLATFORM_BASE_DOMAINS (or its earlier name $GATEWAY_BASE_DOMAINS), else the platform's default.
 */
export function baseDomainsOf(env: NodeJS.ProcessEnv): readonly string[] {
  for (const name of ['PLATFORM_BASE_DOMAINS', 'GATEWAY_BASE_DOMAINS'] as const) {
    const value = env[name];
    if (value === undefined || value.trim() === '') continue;
    const parsed = domainList.safeParse(value);
    if (!parsed.success) {
      throw new CliError(EXIT.usage, `$${name} is not a comma-separated list of domain names: ${value}`, [
        { field: name, issue: parsed.error.issues[0]?.message ?? 'invalid' },
      ]);
    }
    return parsed.data;
  }
  return DEFAULT_PLATFORM_BASE_DOMAINS;
}

const DOMAIN_LISTINGS_AT_ONCE = 8;

/**
 * The tenant a request host belongs to, found as a gateway finds it: a host under a base domain is
 * only ever `<subdomain>.<base>`; any other host is a custom domain some tenant has claimed.
 */
export async function tenantOfHost(
  client: ApiClient,
  host: string,
  baseDomains: readonly string[],
): Promise<TenantSummary> {
  const lookup = lookupHost(host, baseDomains);
  if (lookup.kind === 'none') {
    throw new CliError(
      EXIT.notFound,
      `no tenant is served on ${lookup.host || 'an empty host'} (a tenant host is <subdomain>.<base domain> for ${baseDomains.join(', ')}, or a custom domain); name the tenant with -t`,
    );
  }
  const tenants = await client.list('/api/v1/tenants', tenantSummary);
  if (lookup.kind === 'subdomain') {
    const found = tenants.find((tenant) => tenant.subdomain.toLowerCase() === lookup.label);
    if (!found) {
      throw new CliError(
        EXIT.notFound,
        `no tenant has the subdomain ${lookup.label} (of ${lookup.host}) that you can see; name the tenant with -t`,
      );
    }
    return found;
  }
  const found = await tenantOfCustomDomain(client, tenants, lookup.host);
  if (!found) {
    throw new CliError(
      EXIT.notFound,
      `no tenant has claimed the custom domain ${lookup.host} that you can see (and it is not under a platform base domain: ${baseDomains.join(', ')}); name the tenant with -t`,
    );
  }
  return found;
}

/** The tenant among `tenants` that claimed `domain` (verified or pending: only one tenant can hold a claim). */
async function tenantOfCustomDomain(
  client: ApiClient,
  tenants: readonly TenantSummary[],
  domain: string,
): Promise<TenantSummary | undefined> {
  for (let start = 0; start < tenants.length; start += DOMAIN_LISTINGS_AT_ONCE) {
    const batch = tenants.slice(start, start + DOMAIN_LISTINGS_AT_ONCE);
    const listings = await Promise.all(
      batch.map((tenant) => client.get(`/api/v1/tenants/${tenant.id}/domains`, page(domainClaim))),
    );
    const index = listings.findIndex((listing) => listing.body.data.some((claim) => claim.domain === domain));
    if (index >= 0) return batch[index];
  }
  return undefined;
}
