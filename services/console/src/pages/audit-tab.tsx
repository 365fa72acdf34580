import { useState } from 'preact/hooks';
import type { Page } from '../api/client.js';
import { useApi } from '../api/context.js';
import type { AuditEntry } from '../api/resources.js';
import { Empty, ErrorNotice, Loading, Time } from '../ui/components.js';
import { useAsync } from '../ui/use-async.js';

const RESOURCE_TYPES = ['', 'tenant', 'user', 'origin', 'route', 'api_key'] as const;

interface Filters {
  resource_type: string;
  event_type: string;
  actor: string;
  from: string;
  to: string;
}

const EMPTY: Filters = { resource_type: '', event_type: '', actor: '', from: '', to: '' };
const isoOf = (local: string) => (local ? new Date(local).toISOString() : undefined);

/** The tenant's audit log, newest first, with the API's filters and cursor paging. */
export function AuditTab({ tenantId }: { tenantId: string }) {
  const api = useApi();
  const [draft, setDraft] = useState<Filters>(EMPTY);
  const [filters, setFilters] = useState<Filters>(EMPTY);
  const [pages, setPages] = useState<AuditEntry[][]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [moreError, setMoreError] = useState<unknown>(null);

  const query = (after?: string) => ({
    tenant_id: tenantId,
    limit: '50',
    resource_type: filters.resource_type || undefined,
    event_type: filters.event_type.trim() || undefined,
    actor: filters.actor.trim() || undefined,
    from: isoOf(filters.from),
    to: isoOf(filters.to),
    cursor: after,
  });
  const first = useAsync(async () => {
    const page = await api.get<Page<AuditEntry>>('/api/v1/audit-log', { query: query() });
    setPages([page.data]);
    setCursor(page.next_cursor);
    return page;
  }, [tenantId, filters]);

  const more = async () => {
    if (!cursor) return;
    try {
      const page = await api.get<Page<AuditEntry>>('/api/v1/audit-log', { query: query(cursor) });
      setPages((previous) => [...previous, page.data]);
      setCursor(page.next_cursor);
    } catch (failure) {
      setMoreError(failure);
    }
  };
  const entries = pages.flat();
  const field = (key: keyof Filters) => ({
    name: key,
    value: draft[key],
    onInput: (e: Event) => setDraft({ ...draft, [key]: (e.currentTarget as HTMLInputElement).value }),
  });

  return (
    <div>
      <form
        class="filters"
        id="audit-filters"
        onSubmit={(event) => {
          event.preventDefault();
          setFilters(draft);
        }}
      >
        <label>
          Resource
          <select
            name="resource_type"
            value={draft.resource_type}
            onChange={(e) => setDraft({ ...draft, resource_type: e.currentTarget.value })}
          >
            {RESOURCE_TYPES.map((type) => (
              <option key={type} value={type}>
                {type || 'any'}
              </option>
            ))}
          </select>
        </label>
        <label>
          Event type
          <input placeholder="RouteUpdated" {...field('event_type')} />
        </label>
        <label>
          Actor
          <input placeholder="user_…" {...field('actor')} />
        </label>
        <label>
          From
          <input type="datetime-local" {...field('from')} />
        </label>
        <label>
          To
          <input type="datetime-local" {...field('to')} />
        </label>
        <button type="submit" class="primary">
          Filter
        </button>
        <button
          type="button"
          onClick={() => {
            setDraft(EMPTY);
            setFilters(EMPTY);
          }}
        >
          Clear
        </button>
      </form>
      <ErrorNotice error={first.error ?? moreError} />
      {first.loading && entries.length === 0 && <Loading what="the audit log" />}
      {!first.loading && !first.error && entries.length === 0 && <Empty>No entry matches.</Empty>}
      {entries.length > 0 && (
        <table id="audit-log">
          <thead>
            <tr>
              <th>Position</th>
              <th>When</th>
              <th>Event</th>
              <th>Resource</th>
              <th>Actor</th>
              <th>Data</th>
            </tr>
          </thead>
          <tbody>
            {entries.map((entry) => (
              <tr key={entry.position} data-event={entry.event_type}>
                <td>{entry.position}</td>
                <td>
                  <Time iso={entry.occurred_at} />
                </td>
                <td>{entry.event_type}</td>
                <td>
                  {entry.resource_type} <code class="small">{entry.resource_id.slice(0, 8)}</code>
                </td>
                <td>{entry.actor}</td>
                <td>
                  <details>
                    <summary>show</summary>
                    <pre>{JSON.stringify(entry.data, null, 2)}</pre>
                  </details>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {cursor && (
        <button type="button" onClick={more}>
          Older entries
        </button>
      )}
    </div>
  );
}
