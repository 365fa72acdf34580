import { withHiddenCharactersShown } from '@vantageedge/shared/domain/visible-text';
import { useState } from 'preact/hooks';
import type { Page } from '../api/client.js';
import { useApi } from '../api/context.js';
import type { ConfigChange, ConfigChangeResult, ConfigDiff, ConfigHistoryEntry } from '../api/resources.js';
import { Empty, ErrorNotice, Loading, Time } from '../ui/components.js';
import { useAsync } from '../ui/use-async.js';

/**
 * The tenant's config history (every change with its event position, newest first). A change's
 * "Compare with now" shows the structured diff between the config right after it and today's; "Roll
 * back to here" first asks the control plane what a rollback would change (dry run), and only the
 * confirmation appends the compensating events (waiting until the gateways serve them), refused when
 * the config changed since the plan was shown.
 */
export function ConfigHistoryTab({ tenantId }: { tenantId: string }) {
  const api = useApi();
  const base = `/api/v1/tenants/${tenantId}/config`;
  const history = useAsync(
    () => api.get<Page<ConfigHistoryEntry>>(`${base}/history`, { query: { limit: PAGE_SIZE } }),
    [tenantId],
  );
  const [older, setOlder] = useState<OlderChanges | null>(null);
  // Older pages belong to the first page they were read after: a reload starts from the newest again.
  const olderShown = older && older.after === history.data ? older : null;
  const cursor = olderShown ? olderShown.cursor : (history.data?.next_cursor ?? null);
  const entries = history.data ? [...history.data.data, ...(olderShown?.entries ?? [])] : [];
  const [diff, setDiff] = useState<ConfigDiff | null>(null);
  const [plan, setPlan] = useState<{ toPosition: string; result: ConfigChangeResult } | null>(null);
  const [done, setDone] = useState<{
    toPosition: string;
    result: ConfigChangeResult;
    rollout: string;
  } | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  const run = async (work: () => Promise<void>) => {
    setError(null);
    setBusy(true);
    try {
      await work();
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  };
  const more = () =>
    run(async () => {
      const head = history.data;
      if (!head || !cursor) return;
      const page = await api.get<Page<ConfigHistoryEntry>>(`${base}/history`, {
        query: { limit: PAGE_SIZE, cursor },
      });
      setOlder((previous) => {
        const shown =
          previous?.after === head ? previous : { after: head, entries: [], cursor: head.next_cursor };
        // A second click on the same cursor answers the page already added.
        if (shown.cursor !== cursor) return previous;
        return { after: head, entries: [...shown.entries, ...page.data], cursor: page.next_cursor };
      });
    });
  const compare = (entry: ConfigHistoryEntry) =>
    run(async () => {
      setPlan(null);
      setDone(null);
      setDiff(await api.get<ConfigDiff>(`${base}/diff`, { query: { from: entry.position } }));
    });
  const planRollback = (entry: ConfigHistoryEntry) =>
    run(async () => {
      setDiff(null);
      setDone(null);
      const response = await api.send<ConfigChangeResult>('POST', `${base}/rollback`, {
        body: { to_position: entry.position, dry_run: true },
      });
      setPlan({ toPosition: entry.position, result: response.body });
    });
  const rollBack = () =>
    run(async () => {
      if (!plan) return;
      // On the version the plan was made on: a change made since is refused (412), never undone unseen.
      const response = await api.send<ConfigChangeResult>('POST', `${base}/rollback`, {
        body: { to_position: plan.toPosition },
        query: { wait_for_rollout: '10s' },
        headers: { 'if-match': `"${plan.result.version}"` },
      });
      setPlan(null);
      setDone({
        toPosition: plan.toPosition,
        result: response.body,
        rollout: response.headers.get('x-rollout') ?? (response.status === 202 ? 'pending' : 'unknown'),
      });
      history.reload();
    });

  return (
    <div>
      <ErrorNotice error={history.error ?? error} />
      {done && (
        <div class="notice ok" id="rollback-done" role="status">
          Rolled back to the config of position <strong>{done.toPosition}</strong>:{' '}
          {done.result.changes.length} change(s), now at version {done.result.version}.{' '}
          {done.rollout === 'complete'
            ? 'Every gateway replica serves it.'
            : 'The gateways are still picking it up (see Rollout).'}
        </div>
      )}
      {plan && (
        <section class="card" id="rollback-plan">
          <h2>Roll back to position {plan.toPosition}?</h2>
          {plan.result.changes.length === 0 ? (
            <Empty>The tenant already has this config: nothing would change.</Empty>
          ) : (
            <>
              <p>These changes would be recorded (the history keeps everything that happened before):</p>
              <Changes changes={plan.result.changes} />
            </>
          )}
          <button
            type="button"
            class="danger"
            id="confirm-rollback"
            disabled={busy || plan.result.changes.length === 0}
            onClick={rollBack}
          >
            Roll back
          </button>{' '}
          <button type="button" onClick={() => setPlan(null)}>
            Cancel
          </button>
        </section>
      )}
      {diff && (
        <section class="card" id="config-diff">
          <h2>
            From position {diff.from.position} (version {diff.from.version}) to now (version {diff.to.version}
            )
          </h2>
          {diff.changes.length === 0 ? <Empty>No difference.</Empty> : <Changes changes={diff.changes} />}
          <button type="button" class="small" onClick={() => setDiff(null)}>
            Close
          </button>
        </section>
      )}
      {history.loading && !history.data && <Loading what="the config history" />}
      {history.data && entries.length === 0 && <Empty>No config change yet.</Empty>}
      {entries.length > 0 && (
        <table id="config-history">
          <thead>
            <tr>
              <th>Position</th>
              <th>When</th>
              <th>Who</th>
              <th>Change</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {entries.map((entry) => (
              <tr key={entry.position} data-position={entry.position} data-event={entry.event_type}>
                <td>{entry.position}</td>
                <td>
                  <Time iso={entry.occurred_at} />
                </td>
                <td>
                  <code>{withHiddenCharactersShown(entry.actor)}</code>
                </td>
                <td>
                  {withHiddenCharactersShown(entry.summary)}
                  {entry.causation_id && <span class="muted"> (by a rollback)</span>}
                </td>
                <td class="actions">
                  <button type="button" class="small" disabled={busy} onClick={() => compare(entry)}>
                    Compare with now
                  </button>
                  <button type="button" class="small" disabled={busy} onClick={() => planRollback(entry)}>
                    Roll back to here
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {cursor && (
        <button type="button" disabled={busy} onClick={more}>
          Older changes
        </button>
      )}
    </div>
  );
}

const PAGE_SIZE = '50';

/** The pages "Older changes" added after one first page, and the cursor past the last of them. */
interface OlderChanges {
  after: Page<ConfigHistoryEntry>;
  entries: ConfigHistoryEntry[];
  cursor: string | null;
}

const show = (value: unknown) =>
  value === undefined || value === null ? '—' : withHiddenCharactersShown(JSON.stringify(value));

function Changes({ changes }: { changes: readonly ConfigChange[] }) {
  return (
    <ul class="changes">
      {changes.map((change) => (
        <li
          key={`${change.resource}:${change.id ?? change.name}:${change.change}`}
          data-change={change.change}
        >
          <span class={`diff-${change.change === 'restored' ? 'added' : change.change}`}>
            {change.change}
          </span>{' '}
          {change.resource} <strong>{withHiddenCharactersShown(change.name)}</strong>
          {change.fields.length > 0 && (
            <ul>
              {change.fields.map((field) => (
                <li key={field.field}>
                  <code>{field.field}</code>: {show(field.from)} → {show(field.to)}
                </li>
              ))}
            </ul>
          )}
        </li>
      ))}
    </ul>
  );
}
