import type { TenantAccess } from '../auth/caller.js';
import { configReadBudgetOf } from '../config-history/config-read-budget.js';
import type { TenantConfig } from '../config-history/tenant-config.js';
import { DomainError, underPlace } from '../domain/errors.js';
import type { ConfigDocument } from '../schemas/config-document.js';
import type { CommandDeps } from './context.js';
import { requireClientCertificateOfTenant } from './lookups.js';

/**
 * The client certificates a document's origins name that none of the tenant's origins presents yet,
 * each checked as an origin command checks it (a live certificate of the tenant, usable for client
 * authentication) and refused under its place in the document (`origins.1.tls.client_certificate_id`):
 * the commands an apply runs name only their own body's fields, which in a document of many origins
 * says none of them. A certificate an origin presents now is live (it cannot be deleted meanwhile).
 * Each read is charged to the tenant's config read budget (the bucket of the caller's `access`), and
 * they stop with its 429 once it is in debt, as the reads of the ids a document names do.
 */
export async function requireDocumentClientCertificates(
  deps: Pick<CommandDeps, 'store'>,
  tenantId: string,
  document: ConfigDocument,
  current: TenantConfig,
  access: Exclude<TenantAccess, 'none'>,
): Promise<void> {
  const budget = configReadBudgetOf(deps.store, access);
  const checked = new Set<string>();
  for (const origin of current.origins) {
    const presented = origin.tls?.client_certificate_id;
    if (presented) checked.add(presented);
  }
  for (const [index, origin] of document.origins.entries()) {
    const certificateId = origin.tls?.client_certificate_id;
    if (!certificateId || checked.has(certificateId)) continue;
    checked.add(certificateId);
    try {
      budget.admit(tenantId);
      await requireClientCertificateOfTenant(deps, certificateId, tenantId, (events) =>
        budget.spendStreamRead(tenantId, events),
      );
    } catch (error) {
      throw error instanceof DomainError ? underPlace(error, `origins.${index}`) : error;
    }
  }
}
