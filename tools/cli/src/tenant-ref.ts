import type { ApiClient } from './api-client.js';
import { CliError, EXIT } from './exit-codes.js';

/** `-t acme` or `-t <uuid>`: a tenant by subdomain or id, among the tenants the caller can see. */

export interface TenantSummary {
  id: string;
  name: string;
  subdomain: string;
  settings?: { custom_domains?: string[] };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export async function resolveTenant(client: ApiClient, ref: string): Promise<TenantSummary> {
  if (UUID.test(ref)) return (await client.get<TenantSummary>(`/api/v1/tenants/${ref}`)).body;
  const tenants = await client.list<TenantSummary>('/api/v1/tenants');
  const found = tenants.find((tenant) => tenant.subdomain === ref);
  if (!found) throw new CliError(EXIT.notFound, `no tenant with subdomain or id ${ref}`);
  return found;
}

/** The tenant a request host belongs to: one of its custom domains, or `<subdomain>.<base domain>`. */
export async function tenantOfHost(client: ApiClient, host: string): Promise<TenantSummary> {
  const name = host.toLowerCase().replace(/:\d+$/, '');
  const tenants = await client.list<TenantSummary>('/api/v1/tenants');
  const byDomain = tenants.find((tenant) => tenant.settings?.custom_domains?.includes(name));
  const bySubdomain = tenants.find((tenant) => name.startsWith(`${tenant.subdomain}.`));
  const found = byDomain ?? bySubdomain;
  if (!found) throw new CliError(EXIT.notFound, `no tenant serves ${name}; name it with -t`);
  return found;
}
