import { createTenantBody } from '@vantageedge/control-plane/schemas/requests';
import { withHiddenCharactersShown } from '@vantageedge/shared/domain/visible-text';
import { useState } from 'preact/hooks';
import { useApi } from '../api/context.js';
import type { Tenant } from '../api/resources.js';
import { hrefOf, navigate } from '../router.js';
import { Empty, ErrorNotice, Field, issuesFromProblem, Loading, Time } from '../ui/components.js';
import { useAsync } from '../ui/use-async.js';
import { type FieldIssues, validate } from '../validation.js';

export function TenantsPage() {
  const api = useApi();
  const tenants = useAsync(() => api.getAll<Tenant>('/api/v1/tenants'), []);
  return (
    <section>
      <h1>Tenants</h1>
      <ErrorNotice error={tenants.error} />
      {tenants.loading && !tenants.data && <Loading what="tenants" />}
      {tenants.data && tenants.data.length === 0 && <Empty>No tenant yet: create one below.</Empty>}
      {tenants.data && tenants.data.length > 0 && (
        <table id="tenants">
          <thead>
            <tr>
              <th>Name</th>
              <th>Subdomain</th>
              <th>Clerk org</th>
              <th>Created</th>
            </tr>
          </thead>
          <tbody>
            {tenants.data.map((tenant) => (
              <tr key={tenant.id}>
                <td>
                  <a href={hrefOf({ page: 'tenant', tenantId: tenant.id, tab: 'overview' })}>
                    {withHiddenCharactersShown(tenant.name)}
                  </a>
                </td>
                <td>
                  <code>{tenant.subdomain}</code>
                </td>
                <td>{tenant.clerk_org_id ?? <span class="muted">—</span>}</td>
                <td>
                  <Time iso={tenant.created_at} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <CreateTenant />
    </section>
  );
}

function CreateTenant() {
  const api = useApi();
  const [name, setName] = useState('');
  const [subdomain, setSubdomain] = useState('');
  const [orgId, setOrgId] = useState('');
  const [issues, setIssues] = useState<FieldIssues>({});
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event: Event) => {
    event.preventDefault();
    const body = { name, subdomain, ...(orgId.trim() ? { clerk_org_id: orgId.trim() } : {}) };
    const checked = validate(createTenantBody, body);
    setError(null);
    if (!checked.ok) {
      setIssues(checked.issues);
      return;
    }
    setIssues({});
    setBusy(true);
    try {
      const created = await api.send<Tenant>('POST', '/api/v1/tenants', { body });
      navigate({ page: 'tenant', tenantId: created.body.id, tab: 'overview' });
    } catch (failure) {
      setError(failure);
      setIssues(issuesFromProblem(failure));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="card" id="create-tenant" onSubmit={submit}>
      <h2>New tenant</h2>
      <ErrorNotice error={error} />
      <Field label="Name" field="name" issues={issues}>
        <input name="name" value={name} onInput={(e) => setName(e.currentTarget.value)} />
      </Field>
      <Field label="Subdomain" field="subdomain" issues={issues} hint="serves as <subdomain>.<base domain>">
        <input name="subdomain" value={subdomain} onInput={(e) => setSubdomain(e.currentTarget.value)} />
      </Field>
      <Field label="Clerk organization (optional)" field="clerk_org_id" issues={issues}>
        <input
          name="clerk_org_id"
          value={orgId}
          placeholder="org_…"
          onInput={(e) => setOrgId(e.currentTarget.value)}
        />
      </Field>
      <button type="submit" class="primary" disabled={busy}>
        Create tenant
      </button>
    </form>
  );
}
