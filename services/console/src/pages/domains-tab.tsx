import { createCustomDomainBody } from '@vantageedge/control-plane/schemas/requests';
import { useState } from 'preact/hooks';
import { ifMatchListed, type Page } from '../api/client.js';
import { useApi } from '../api/context.js';
import type { CustomDomain, Listed } from '../api/resources.js';
import { Empty, ErrorNotice, Field, issuesFromProblem, Loading, Time } from '../ui/components.js';
import { useAsync } from '../ui/use-async.js';
import { type FieldIssues, validate } from '../validation.js';

/** Custom domains: claim (pending, with the TXT record to create), verify, remove. */
export function DomainsTab({ tenantId }: { tenantId: string }) {
  const api = useApi();
  const domains = useAsync(
    () => api.get<Page<Listed<CustomDomain>>>(`/api/v1/tenants/${tenantId}/domains`),
    [tenantId],
  );
  const [error, setError] = useState<unknown>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [domain, setDomain] = useState('');
  const [issues, setIssues] = useState<FieldIssues>({});

  // The domain as listed: one removed and claimed again since is refused with 412, never acted on unseen.
  const act = async (method: string, path: string, entry: Listed<CustomDomain>, done: string) => {
    setError(null);
    setNotice(null);
    try {
      await api.send(method, path, { headers: ifMatchListed(entry) });
      setNotice(done);
      domains.reload();
    } catch (failure) {
      setError(failure);
    }
  };
  const add = async (event: Event) => {
    event.preventDefault();
    setError(null);
    const checked = validate(createCustomDomainBody, { domain });
    if (!checked.ok) {
      setIssues(checked.issues);
      return;
    }
    setIssues({});
    try {
      await api.send('POST', `/api/v1/tenants/${tenantId}/domains`, { body: { domain } });
      setDomain('');
      domains.reload();
    } catch (failure) {
      setError(failure);
      setIssues(issuesFromProblem(failure));
    }
  };

  return (
    <div>
      <ErrorNotice
        error={domains.error ?? error}
        edits={false}
        onReload={() => {
          setError(null);
          domains.reload();
        }}
      />
      {notice && <div class="notice ok">{notice}</div>}
      {domains.loading && !domains.data && <Loading what="custom domains" />}
      {domains.data && domains.data.data.length === 0 && <Empty>No custom domain.</Empty>}
      {domains.data && domains.data.data.length > 0 && (
        <table id="domains">
          <thead>
            <tr>
              <th>Domain</th>
              <th>Status</th>
              <th>DNS proof</th>
              <th>Verified</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {domains.data.data.map((entry) => (
              <tr key={entry.id}>
                <td>
                  <code>{entry.domain}</code>
                </td>
                <td>{entry.status}</td>
                <td>
                  {entry.status === 'pending' ? (
                    <span>
                      TXT <code>{entry.verification.name}</code> = <code>{entry.verification.value}</code>
                    </span>
                  ) : (
                    (entry.verification_method ?? '—')
                  )}
                </td>
                <td>
                  <Time iso={entry.verified_at} />
                </td>
                <td class="actions">
                  {entry.status === 'pending' && (
                    <button
                      type="button"
                      class="small"
                      onClick={() =>
                        act(
                          'POST',
                          `/api/v1/tenants/${tenantId}/domains/${entry.domain}/verify`,
                          entry,
                          `${entry.domain} is verified and serves.`,
                        )
                      }
                    >
                      Verify
                    </button>
                  )}
                  <button
                    type="button"
                    class="danger small"
                    onClick={() =>
                      window.confirm(`Remove ${entry.domain}?`) &&
                      act(
                        'DELETE',
                        `/api/v1/tenants/${tenantId}/domains/${entry.domain}`,
                        entry,
                        `${entry.domain} removed.`,
                      )
                    }
                  >
                    Remove
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <form class="card" id="add-domain" onSubmit={add}>
        <h2>Claim a domain</h2>
        <Field
          label="Host name"
          field="domain"
          issues={issues}
          hint="e.g. api.example.com; serves once verified"
        >
          <input name="domain" value={domain} onInput={(e) => setDomain(e.currentTarget.value)} />
        </Field>
        <button type="submit" class="primary">
          Claim
        </button>
      </form>
    </div>
  );
}
