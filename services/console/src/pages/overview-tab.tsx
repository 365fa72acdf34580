import { updateTenantBody } from '@vantageedge/control-plane/schemas/requests';
import { withHiddenCharactersShown } from '@vantageedge/shared/domain/visible-text';
import { useEffect, useState } from 'preact/hooks';
import { useApi } from '../api/context.js';
import type { Tenant } from '../api/resources.js';
import { navigate } from '../router.js';
import { ErrorNotice, Field, issuesFromProblem, Time } from '../ui/components.js';
import { type FieldIssues, validate } from '../validation.js';

/** The tenant's name and settings (JSON, checked with the API's schema), and deleting the tenant. */
export function OverviewTab({
  tenant,
  etag,
  onChanged,
}: {
  tenant: Tenant;
  etag: string | null;
  onChanged: () => void;
}) {
  const api = useApi();
  const [name, setName] = useState(tenant.name);
  const [settings, setSettings] = useState(JSON.stringify(tenant.settings, null, 2));
  const [issues, setIssues] = useState<FieldIssues>({});
  const [error, setError] = useState<unknown>(null);
  const [saved, setSaved] = useState(false);
  const [busy, setBusy] = useState(false);
  // Every read of the tenant (after a save, or after loading the current version on a 412) is what
  // the form edits from then on, under that read's ETag.
  useEffect(() => {
    setName(tenant.name);
    setSettings(JSON.stringify(tenant.settings, null, 2));
  }, [tenant]);

  const loadCurrentVersion = () => {
    setError(null);
    setIssues({});
    setSaved(false);
    onChanged();
  };

  const save = async (event: Event) => {
    event.preventDefault();
    setSaved(false);
    setError(null);
    let parsedSettings: unknown;
    try {
      parsedSettings = JSON.parse(settings);
    } catch (failure) {
      setIssues({ settings: `is not JSON: ${(failure as Error).message}` });
      return;
    }
    const body = { name, settings: parsedSettings };
    const checked = validate(updateTenantBody, body);
    if (!checked.ok) {
      setIssues(checked.issues);
      return;
    }
    setIssues({});
    setBusy(true);
    try {
      await api.send('PATCH', `/api/v1/tenants/${tenant.id}`, {
        body,
        headers: etag ? { 'if-match': etag } : {},
      });
      setSaved(true);
      onChanged();
    } catch (failure) {
      setError(failure);
      setIssues(issuesFromProblem(failure));
    } finally {
      setBusy(false);
    }
  };

  const remove = async () => {
    if (
      !window.confirm(
        `Delete tenant ${withHiddenCharactersShown(tenant.name)}? Its routes stop serving on every gateway.`,
      )
    )
      return;
    setBusy(true);
    try {
      await api.send('DELETE', `/api/v1/tenants/${tenant.id}`, { headers: etag ? { 'if-match': etag } : {} });
      navigate({ page: 'tenants' });
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  };

  return (
    <div>
      <dl class="facts">
        <dt>Id</dt>
        <dd>
          <code id="tenant-id">{tenant.id}</code>
        </dd>
        <dt>Clerk organization</dt>
        <dd>{tenant.clerk_org_id ?? '—'}</dd>
        <dt>Created</dt>
        <dd>
          <Time iso={tenant.created_at} />
        </dd>
        <dt>Updated</dt>
        <dd>
          <Time iso={tenant.updated_at} />
        </dd>
      </dl>
      <form class="card" onSubmit={save}>
        <h2>Edit</h2>
        <ErrorNotice error={error} onReload={loadCurrentVersion} />
        {saved && <div class="notice ok">Saved.</div>}
        <Field label="Name" field="name" issues={issues}>
          <input name="name" value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </Field>
        <Field label="Settings (JSON)" field="settings" issues={issues}>
          <textarea
            name="settings"
            rows={12}
            spellcheck={false}
            value={settings}
            onInput={(e) => setSettings(e.currentTarget.value)}
          />
        </Field>
        <button type="submit" class="primary" disabled={busy}>
          Save
        </button>
        <button type="button" class="danger" disabled={busy} onClick={remove}>
          Delete tenant
        </button>
      </form>
    </div>
  );
}
