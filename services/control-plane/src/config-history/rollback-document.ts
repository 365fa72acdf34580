import { documentOf, type UncheckedDocument } from './config-document-of.js';
import type { TenantConfig } from './tenant-config.js';

/**
 * The document a rollback applies: the config recorded at its position, with the tenant's service
 * accounts as they are now. A service account's keys are credentials — each one signs tokens the
 * gateways accept for its service — like the API keys and users no document holds, so a rollback
 * never brings back a key removed since (a leaked one, a retired service) nor takes away one added.
 */
export function rollbackDocumentOf(target: TenantConfig, current: TenantConfig): UncheckedDocument {
  const settings = {
    ...target.tenant.settings,
    service_accounts: current.tenant.settings.service_accounts,
  };
  return documentOf({ ...target, tenant: { ...target.tenant, settings } }, { originNames: false });
}
