import { createOriginBody } from '@vantageedge/control-plane/schemas/requests';
import { useState } from 'preact/hooks';
import { useApi } from '../api/context.js';
import type { Origin } from '../api/resources.js';
import { Empty, ErrorNotice, Field, issuesFromProblem, Loading } from '../ui/components.js';
import { useAsync } from '../ui/use-async.js';
import { type FieldIssues, validate } from '../validation.js';

export function OriginsTab({ tenantId }: { tenantId: string }) {
  const api = useApi();
  const origins = useAsync(
    () => api.getAll<Origin>('/api/v1/origins', { query: { tenant_id: tenantId } }),
    [tenantId],
  );
  const [error, setError] = useState<unknown>(null);

  const remove = async (origin: Origin) => {
    if (!window.confirm(`Delete origin ${origin.name}?`)) return;
    setError(null);
    try {
      await api.send('DELETE', `/api/v1/origins/${origin.id}`);
      origins.reload();
    } catch (failure) {
      setError(failure);
    }
  };

  return (
    <div>
      <ErrorNotice error={origins.error ?? error} />
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
              <th />
            </tr>
          </thead>
          <tbody>
            {origins.data.map((origin) => (
              <tr key={origin.id}>
                <td>{origin.name}</td>
                <td>
                  {origin.targets.map((target) => (
                    <div key={target.url}>
                      <code>{target.url}</code> <span class="muted">weight {target.weight}</span>
                    </div>
                  ))}
                </td>
                <td>{origin.load_balancing.algorithm}</td>
                <td>{origin.timeout_seconds} s</td>
                <td>
                  <button type="button" class="danger small" onClick={() => remove(origin)}>
                    Delete
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <CreateOrigin tenantId={tenantId} onCreated={origins.reload} />
    </div>
  );
}

function CreateOrigin({ tenantId, onCreated }: { tenantId: string; onCreated: () => void }) {
  const api = useApi();
  const [name, setName] = useState('');
  const [url, setUrl] = useState('');
  const [timeout, setTimeoutSeconds] = useState('30');
  const [issues, setIssues] = useState<FieldIssues>({});
  const [error, setError] = useState<unknown>(null);

  const submit = async (event: Event) => {
    event.preventDefault();
    setError(null);
    const body = { tenant_id: tenantId, name, url, timeout_seconds: Number(timeout) };
    const checked = validate(createOriginBody, body);
    if (!checked.ok) {
      setIssues(checked.issues);
      return;
    }
    setIssues({});
    try {
      await api.send('POST', '/api/v1/origins', { body });
      setName('');
      setUrl('');
      onCreated();
    } catch (failure) {
      setError(failure);
      setIssues(issuesFromProblem(failure));
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
      <button type="submit" class="primary">
        Create origin
      </button>
    </form>
  );
}
