import { createApiKeyBody } from '@vantageedge/control-plane/schemas/requests';
import { withHiddenCharactersShown } from '@vantageedge/shared/domain/visible-text';
import { useState } from 'preact/hooks';
import { ifMatchListed } from '../api/client.js';
import { useApi } from '../api/context.js';
import type { ApiKey, ApiKeyWithQuota, IssuedApiKey, Listed } from '../api/resources.js';
import { Empty, ErrorNotice, Field, issuesFromProblem, Loading, Time } from '../ui/components.js';
import { useAsync } from '../ui/use-async.js';
import { type FieldIssues, validate } from '../validation.js';

/**
 * API keys. The plaintext of a new or rotated key is in the command's answer only; the console shows
 * it once, in this tab's memory, until it is dismissed (it is never stored or shown again).
 */
export function ApiKeysTab({ tenantId }: { tenantId: string }) {
  const api = useApi();
  const keys = useAsync(
    () => api.getAll<Listed<ApiKey>>('/api/v1/api-keys', { query: { tenant_id: tenantId } }),
    [tenantId],
  );
  const [issued, setIssued] = useState<IssuedApiKey | null>(null);
  const [error, setError] = useState<unknown>(null);

  // Both act on the key as listed: one changed since (rotated, its quota changed) is refused with 412.
  const rotate = async (key: Listed<ApiKey>) => {
    if (
      !window.confirm(
        `Rotate ${withHiddenCharactersShown(key.name)}? The old key keeps working during the grace period.`,
      )
    )
      return;
    setError(null);
    try {
      const response = await api.send<IssuedApiKey>('POST', `/api/v1/api-keys/${key.id}/rotate`, {
        body: {},
        headers: ifMatchListed(key),
      });
      setIssued(response.body);
      keys.reload();
    } catch (failure) {
      setError(failure);
    }
  };
  const revoke = async (key: Listed<ApiKey>) => {
    if (
      !window.confirm(`Revoke ${withHiddenCharactersShown(key.name)}? Requests with it are refused at once.`)
    )
      return;
    setError(null);
    try {
      await api.send('POST', `/api/v1/api-keys/${key.id}/revoke`, { body: {}, headers: ifMatchListed(key) });
      keys.reload();
    } catch (failure) {
      setError(failure);
    }
  };

  return (
    <div>
      {issued && <IssuedKey issued={issued} onDismiss={() => setIssued(null)} />}
      <ErrorNotice
        error={keys.error ?? error}
        edits={false}
        onReload={() => {
          setError(null);
          keys.reload();
        }}
      />
      {keys.loading && !keys.data && <Loading what="API keys" />}
      {keys.data && keys.data.length === 0 && <Empty>No API key yet.</Empty>}
      {keys.data && keys.data.length > 0 && (
        <table id="api-keys">
          <thead>
            <tr>
              <th>Name</th>
              <th>Prefix</th>
              <th>Scopes</th>
              <th>Expires</th>
              <th>Quota</th>
              <th>State</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {keys.data.map((key) => (
              <tr key={key.id} data-key={key.name}>
                <td>{withHiddenCharactersShown(key.name)}</td>
                <td>
                  <code>{key.key_prefix}…</code>
                </td>
                <td>{key.scopes.join(', ') || <span class="muted">—</span>}</td>
                <td>
                  <Time iso={key.expires_at} />
                </td>
                <td>
                  <QuotaCell apiKey={key} />
                </td>
                <td>{key.revoked_at ? 'revoked' : key.replaced_by ? 'rotated' : 'active'}</td>
                <td class="actions">
                  {!key.revoked_at && !key.replaced_by && (
                    <>
                      <button type="button" class="small" onClick={() => rotate(key)}>
                        Rotate
                      </button>
                      <button type="button" class="danger small" onClick={() => revoke(key)}>
                        Revoke
                      </button>
                    </>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <CreateApiKey
        tenantId={tenantId}
        onCreated={(key) => {
          setIssued(key);
          keys.reload();
        }}
      />
    </div>
  );
}

function IssuedKey({ issued, onDismiss }: { issued: IssuedApiKey; onDismiss: () => void }) {
  const [copied, setCopied] = useState(false);
  return (
    <div class="notice issued-key" role="status">
      <p>
        The key <strong>{withHiddenCharactersShown(issued.name)}</strong>. Copy it now: it is shown only this
        once and cannot be read again (only a hash is stored).
      </p>
      <code id="issued-key" class="secret">
        {issued.key}
      </code>
      <div>
        <button
          type="button"
          class="small"
          onClick={() =>
            navigator.clipboard?.writeText(issued.key).then(
              () => setCopied(true),
              () => {},
            )
          }
        >
          {copied ? 'Copied' : 'Copy'}
        </button>
        <button type="button" class="small" onClick={onDismiss}>
          I have stored it
        </button>
      </div>
    </div>
  );
}

function CreateApiKey({ tenantId, onCreated }: { tenantId: string; onCreated: (key: IssuedApiKey) => void }) {
  const api = useApi();
  const [name, setName] = useState('');
  const [scopes, setScopes] = useState('');
  const [expiresAt, setExpiresAt] = useState('');
  const [perDay, setPerDay] = useState('');
  const [issues, setIssues] = useState<FieldIssues>({});
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event: Event) => {
    event.preventDefault();
    setError(null);
    const expires = expiresAt.trim() === '' ? null : new Date(expiresAt).toISOString();
    const body = {
      tenant_id: tenantId,
      name,
      scopes: scopes
        .split(',')
        .map((scope) => scope.trim())
        .filter((scope) => scope !== ''),
      expires_at: expires,
      quota: perDay.trim() === '' ? null : { requests_per_day: Number(perDay) },
    };
    const checked = validate(createApiKeyBody, body);
    if (!checked.ok) {
      setIssues(checked.issues);
      return;
    }
    setIssues({});
    setBusy(true);
    try {
      const response = await api.send<IssuedApiKey>('POST', '/api/v1/api-keys', { body });
      setName('');
      setScopes('');
      setExpiresAt('');
      setPerDay('');
      onCreated(response.body);
    } catch (failure) {
      setError(failure);
      setIssues(issuesFromProblem(failure));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="card" id="create-api-key" onSubmit={submit}>
      <h2>New API key</h2>
      <ErrorNotice error={error} />
      <Field label="Name" field="name" issues={issues}>
        <input name="name" value={name} onInput={(e) => setName(e.currentTarget.value)} />
      </Field>
      <Field label="Scopes" field="scopes" issues={issues} hint="comma-separated">
        <input name="scopes" value={scopes} onInput={(e) => setScopes(e.currentTarget.value)} />
      </Field>
      <Field label="Expires (optional)" field="expires_at" issues={issues}>
        <input
          name="expires_at"
          type="datetime-local"
          value={expiresAt}
          onInput={(e) => setExpiresAt(e.currentTarget.value)}
        />
      </Field>
      <Field
        label="Requests per day (optional)"
        field="quota"
        issues={issues}
        hint="over it the gateways answer 429 quota_exceeded until the next UTC day"
      >
        <input
          name="requests_per_day"
          inputMode="numeric"
          value={perDay}
          onInput={(e) => setPerDay(e.currentTarget.value)}
        />
      </Field>
      <button type="submit" class="primary" disabled={busy}>
        Create key
      </button>
    </form>
  );
}

/** A key's quota and, read live from the gateways' counters (the key's GET), what is left of it. */
function QuotaCell({ apiKey }: { apiKey: ApiKey }) {
  const api = useApi();
  const live = useAsync(
    async () => (apiKey.quota ? api.get<ApiKeyWithQuota>(`/api/v1/api-keys/${apiKey.id}`) : null),
    [apiKey.id, apiKey.quota],
  );
  if (!apiKey.quota) return <span class="muted">none</span>;
  const windows = live.data?.quota_usage;
  if (!windows) {
    const { requests_per_day: day, requests_per_month: month } = apiKey.quota;
    return <span>{[day && `${day}/day`, month && `${month}/month`].filter(Boolean).join(', ')}</span>;
  }
  return (
    <span class="quota" data-remaining={windows.map((window) => window.remaining).join(',')}>
      {windows
        .map((window) => `${window.remaining} of ${window.limit} left this ${window.period}`)
        .join('; ')}
    </span>
  );
}
