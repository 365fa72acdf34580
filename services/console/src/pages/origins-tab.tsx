import { createOriginBody, updateOriginBody } from '@vantageedge/control-plane/schemas/requests';
import type { OriginTls } from '@vantageedge/shared/domain/gateway-config';
import { withHiddenCharactersShown } from '@vantageedge/shared/domain/visible-text';
import { useState } from 'preact/hooks';
import { ifMatchListed } from '../api/client.js';
import { useApi } from '../api/context.js';
import type { Certificate, Listed, Origin } from '../api/resources.js';
import { Empty, ErrorNotice, Field, issuesFromProblem, Loading } from '../ui/components.js';
import { useAsync } from '../ui/use-async.js';
import { useEditedResource } from '../ui/use-edited-resource.js';
import { type FieldIssues, validate } from '../validation.js';
import { DEFAULT_ORIGIN_TLS, OriginTlsFields, originTlsSummary } from './origin-tls-fields.js';

export function OriginsTab({ tenantId }: { tenantId: string }) {
  const api = useApi();
  const origins = useAsync(
    () => api.getAll<Listed<Origin>>('/api/v1/origins', { query: { tenant_id: tenantId } }),
    [tenantId],
  );
  // The tenant's certificates: the client certificates an origin may present.
  const certificates = useAsync(
    () => api.getAll<Certificate>('/api/v1/certificates', { query: { tenant_id: tenantId } }),
    [tenantId],
  );
  const [error, setError] = useState<unknown>(null);
  // The origin whose TLS is being edited.
  const tlsEditor = useEditedResource<Origin>(setError);
  const editing = tlsEditor.edited;

  const editTls = (origin: Origin) => {
    setError(null);
    return tlsEditor.open(() => api.send<Origin>('GET', `/api/v1/origins/${origin.id}`));
  };

  // The origin as listed: one changed since is refused with 412, never deleted unseen.
  const remove = async (origin: Listed<Origin>) => {
    if (!window.confirm(`Delete origin ${withHiddenCharactersShown(origin.name)}?`)) return;
    setError(null);
    try {
      await api.send('DELETE', `/api/v1/origins/${origin.id}`, { headers: ifMatchListed(origin) });
      origins.reload();
    } catch (failure) {
      setError(failure);
    }
  };
  const certificateList = certificates.data ?? [];

  return (
    <div>
      <ErrorNotice
        error={origins.error ?? error}
        edits={false}
        onReload={() => {
          setError(null);
          origins.reload();
        }}
      />
      {origins.loading && !origins.data && <Loading what="origins" />}
      {origins.data && origins.data.length === 0 && <Empty>No origin yet: routes need one.</Empty>}
      {origins.data && origins.data.length > 0 && (
        <table id="origins">
          <thead>
            <tr>
              <th>Name</th>
              <th>Targets</th>
              <th>Load balancing</th>
              <th>Timeout</th>
              <th>TLS</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {origins.data.map((origin) => (
              <>
                <tr key={origin.id} data-origin={origin.name}>
                  <td>{withHiddenCharactersShown(origin.name)}</td>
                  <td>
                    {origin.targets.map((target) => (
                      <div key={target.url}>
                        <code>{withHiddenCharactersShown(target.url)}</code>{' '}
                        <span class="muted">
                          weight {target.weight}
                          {target.weight === 0 ? ' (drained: sent no new request)' : ''}
                        </span>
                      </div>
                    ))}
                  </td>
                  <td>{origin.load_balancing.algorithm}</td>
                  <td>{origin.timeout_seconds} s</td>
                  <td class="origin-tls-summary">
                    {originTlsSummary(origin.tls ?? DEFAULT_ORIGIN_TLS, certificateList)}
                  </td>
                  <td>
                    <button
                      type="button"
                      class="small"
                      onClick={() =>
                        editing?.resource.id === origin.id ? tlsEditor.close() : editTls(origin)
                      }
                    >
                      TLS…
                    </button>{' '}
                    <button type="button" class="danger small" onClick={() => remove(origin)}>
                      Delete
                    </button>
                  </td>
                </tr>
                {editing?.resource.id === origin.id && (
                  <tr key={`${origin.id}-tls`}>
                    <td colSpan={6}>
                      {/* A new read is a new form: its ETag never guards fields of an older one. */}
                      <EditOriginTls
                        key={`${editing.resource.id} ${editing.etag}`}
                        origin={editing.resource}
                        etag={editing.etag}
                        certificates={certificateList}
                        onSaved={() => {
                          tlsEditor.close();
                          origins.reload();
                        }}
                        onReload={() => editTls(editing.resource)}
                      />
                    </td>
                  </tr>
                )}
              </>
            ))}
          </tbody>
        </table>
      )}
      <ErrorNotice error={certificates.error} />
      <CreateOrigin tenantId={tenantId} certificates={certificateList} onCreated={origins.reload} />
    </div>
  );
}

/**
 * An origin's `tls` replaced as a whole (PATCH with If-Match: the ETag of the read it edits), checked
 * with the API's own schema first.
 */
function EditOriginTls({
  origin,
  etag,
  certificates,
  onSaved,
  onReload,
}: {
  origin: Origin;
  etag: string | null;
  certificates: readonly Certificate[];
  onSaved: () => void;
  /** Reads the origin again (a 412: someone else changed it since this read). */
  onReload: () => void;
}) {
  const api = useApi();
  const [tls, setTls] = useState<OriginTls>(origin.tls ?? DEFAULT_ORIGIN_TLS);
  const [issues, setIssues] = useState<FieldIssues>({});
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event: Event) => {
    event.preventDefault();
    setError(null);
    const body = { tls };
    const checked = validate(updateOriginBody, body);
    if (!checked.ok) {
      setIssues(checked.issues);
      return;
    }
    setIssues({});
    setBusy(true);
    try {
      await api.send('PATCH', `/api/v1/origins/${origin.id}`, {
        body,
        headers: etag ? { 'if-match': etag } : {},
      });
      onSaved();
    } catch (failure) {
      setError(failure);
      setIssues(issuesFromProblem(failure));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="card" id="edit-origin-tls" data-origin={origin.name} onSubmit={submit}>
      <h2>TLS of {withHiddenCharactersShown(origin.name)}</h2>
      <ErrorNotice error={error} onReload={onReload} />
      <OriginTlsFields value={tls} onChange={setTls} certificates={certificates} issues={issues} />
      <button type="submit" class="primary" disabled={busy}>
        Save TLS settings
      </button>
    </form>
  );
}

function CreateOrigin({
  tenantId,
  certificates,
  onCreated,
}: {
  tenantId: string;
  certificates: readonly Certificate[];
  onCreated: () => void;
}) {
  const api = useApi();
  const [name, setName] = useState('');
  const [url, setUrl] = useState('');
  const [timeout, setTimeoutSeconds] = useState('30');
  const [tls, setTls] = useState<OriginTls>(DEFAULT_ORIGIN_TLS);
  const [issues, setIssues] = useState<FieldIssues>({});
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event: Event) => {
    event.preventDefault();
    setError(null);
    const body = { tenant_id: tenantId, name, url, timeout_seconds: Number(timeout), tls };
    const checked = validate(createOriginBody, body);
    if (!checked.ok) {
      setIssues(checked.issues);
      return;
    }
    setIssues({});
    setBusy(true);
    try {
      await api.send('POST', '/api/v1/origins', { body });
      setName('');
      setUrl('');
      setTls(DEFAULT_ORIGIN_TLS);
      onCreated();
    } catch (failure) {
      setError(failure);
      setIssues(issuesFromProblem(failure));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="card" id="create-origin" onSubmit={submit}>
      <h2>New origin</h2>
      <ErrorNotice error={error} />
      <Field label="Name" field="name" issues={issues}>
        <input name="name" value={name} onInput={(e) => setName(e.currentTarget.value)} />
      </Field>
      <Field label="URL" field="url" issues={issues} hint="one upstream; more targets through the API">
        <input
          name="url"
          value={url}
          placeholder="https://api.internal:8443"
          onInput={(e) => setUrl(e.currentTarget.value)}
        />
      </Field>
      <Field label="Timeout (seconds)" field="timeout_seconds" issues={issues}>
        <input
          name="timeout_seconds"
          type="number"
          value={timeout}
          onInput={(e) => setTimeoutSeconds(e.currentTarget.value)}
        />
      </Field>
      <OriginTlsFields value={tls} onChange={setTls} certificates={certificates} issues={issues} />
      <button type="submit" class="primary" disabled={busy}>
        Create origin
      </button>
    </form>
  );
}
