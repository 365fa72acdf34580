import type { ConfigReadBudget } from '../config-history/config-read-budget.js';
import { DomainError } from '../domain/errors.js';

/** A tenant whose entries a listing left out, and when a read of them may be admitted again. */
export interface OmittedTenant {
  tenant_id: string;
  code: string;
  /** The limit its reads are over, as the 429 of a read of that tenant alone names it. */
  field: string;
  retry_after_seconds: number;
}

/**
 * Which tenants of an admin's listing of all their tenants (no `tenant_id`) are read: each one whose
 * config read budget admits a read. A tenant in debt is left out and named, so that one tenant's
 * overspending does not cost its admins the log of their other tenants; with every tenant in debt there
 * is nothing to serve, and the listing answers the 429 of the one repaid first.
 */
export function admitListedTenants(
  budget: ConfigReadBudget,
  tenantIds: readonly string[],
): { admitted: string[]; omitted: OmittedTenant[] } {
  const admitted: string[] = [];
  const refusals: { tenantId: string; error: DomainError }[] = [];
  for (const tenantId of tenantIds) {
    try {
      budget.admit(tenantId);
      admitted.push(tenantId);
    } catch (error) {
      if (!(error instanceof DomainError) || error.kind !== 'rate_limited') throw error;
      refusals.push({ tenantId, error });
    }
  }
  const retryOf = ({ error }: { error: DomainError }) => error.retryAfterSeconds ?? 1;
  if (admitted.length === 0 && refusals.length > 0) {
    throw refusals.reduce((first, refusal) => (retryOf(refusal) < retryOf(first) ? refusal : first)).error;
  }
  const omitted = refusals.map((refusal) => ({
    tenant_id: refusal.tenantId,
    code: refusal.error.code ?? 'admin_rate_limited',
    field: refusal.error.field ?? '',
    retry_after_seconds: retryOf(refusal),
  }));
  return { admitted, omitted };
}
