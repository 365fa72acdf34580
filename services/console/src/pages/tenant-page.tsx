import { withHiddenCharactersShown } from '@vantageedge/shared/domain/visible-text';
import { useApi } from '../api/context.js';
import type { Tenant } from '../api/resources.js';
import { hrefOf, TENANT_TABS, type TenantTab } from '../router.js';
import { ErrorNotice, Loading } from '../ui/components.js';
import { useAsync } from '../ui/use-async.js';
import { ApiKeysTab } from './api-keys-tab.js';
import { AuditTab } from './audit-tab.js';
import { ConfigHistoryTab } from './config-history-tab.js';
import { DomainsTab } from './domains-tab.js';
import { ExplainTab } from './explain-tab.js';
import { OriginsTab } from './origins-tab.js';
import { OverviewTab } from './overview-tab.js';
import { RolloutTab } from './rollout-tab.js';
import { RoutesTab } from './routes-tab.js';
import { UsageTab } from './usage-tab.js';

const TAB_LABELS: Record<TenantTab, string> = {
  overview: 'Overview',
  origins: 'Origins',
  routes: 'Routes',
  keys: 'API keys',
  domains: 'Domains',
  audit: 'Audit log',
  rollout: 'Rollout',
  usage: 'Usage',
  history: 'Config history',
  explain: 'Explain a request',
};

export function TenantPage({ tenantId, tab }: { tenantId: string; tab: TenantTab }) {
  const api = useApi();
  const tenant = useAsync(async () => {
    const response = await api.send<Tenant>('GET', `/api/v1/tenants/${tenantId}`);
    return { tenant: response.body, etag: response.headers.get('etag') };
  }, [tenantId]);

  return (
    <section>
      <p class="crumbs">
        <a href={hrefOf({ page: 'tenants' })}>Tenants</a> /
      </p>
      <ErrorNotice error={tenant.error} />
      {tenant.loading && !tenant.data && <Loading what="the tenant" />}
      {tenant.data && (
        <>
          <h1>
            {withHiddenCharactersShown(tenant.data.tenant.name)}{' '}
            <code class="subdomain">{tenant.data.tenant.subdomain}</code>
          </h1>
          <nav class="tabs">
            {TENANT_TABS.map((name) => (
              <a
                key={name}
                class={name === tab ? 'active' : ''}
                href={hrefOf({ page: 'tenant', tenantId, tab: name })}
                data-tab={name}
              >
                {TAB_LABELS[name]}
              </a>
            ))}
          </nav>
          <div class="tab-body">
            {tab === 'overview' && (
              <OverviewTab tenant={tenant.data.tenant} etag={tenant.data.etag} onChanged={tenant.reload} />
            )}
            {tab === 'origins' && <OriginsTab tenantId={tenantId} />}
            {tab === 'routes' && <RoutesTab tenant={tenant.data.tenant} />}
            {tab === 'keys' && <ApiKeysTab tenantId={tenantId} />}
            {tab === 'domains' && <DomainsTab tenantId={tenantId} />}
            {tab === 'audit' && <AuditTab tenantId={tenantId} />}
            {tab === 'rollout' && <RolloutTab tenantId={tenantId} />}
            {tab === 'usage' && <UsageTab tenantId={tenantId} />}
            {tab === 'history' && <ConfigHistoryTab tenantId={tenantId} />}
            {tab === 'explain' && <ExplainTab tenantId={tenantId} subdomain={tenant.data.tenant.subdomain} />}
          </div>
        </>
      )}
    </section>
  );
}
