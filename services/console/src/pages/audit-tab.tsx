import { withHiddenCharactersShown } from '@vantageedge/shared/domain/visible-text';
import { useRef, useState } from 'preact/hooks';
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

const queryOf = (tenantId: string, filters: Filters, cursor?: string) => ({
  tenant_id: tenantId,
  limit: '50',
  resource_type: filters.resource_type || undefined,
  event_type: filters.event_type.trim() || undefined,
  actor: filters.actor.trim() || undefined,
  from: isoOf(filters.from),
  to: isoOf(filters.to),
  cursor,
});

interface FirstPage {
  filters: Filters;
  page: Page<AuditEntry>;
}

/** The pages "Older entries" added after one first page (and the cursor past the last of them). */
interface OlderPages {
  after: FirstPage;
  pages: AuditEntry[][];
  cursor: string | null;
}

/** The tenant's audit log, newest first, with the API's filters and cursor paging. */
export function AuditTab({ tenantId }: { tenantId: string }) {
  const api = useApi();
  const [draft, setDraft] = useState<Filters>(EMPTY);
  const [filters, setFilters] = useState<Filters>(EMPTY);
  const [older, setOlder] = useState<OlderPages | null>(null);
  const [moreError, setMoreError] = useState<unknown>(null);

  // useAsync keeps only the newest filter's first page; the pages after it belong to that page.
  const first = useAsync(
    async () => ({
      filters,
      page: await api.get<Page<AuditEntry>>('/api/v1/audit-log', { query: queryOf(tenantId, filters) }),
    }),
    [tenantId, filters],
  );
  const shown = useRef(first.data);
  shown.current = first.data;
  const olderShown = older && older.after === first.data ? older : null;
  const cursor = olderShown ? olderShown.cursor : (first.data?.page.next_cursor ?? null);

  const more = async () => {
    const head = first.data;
    if (!head || !cursor) return;
    setMoreError(null);
    try {
      const page = await api.get<Page<AuditEntry>>('/api/v1/audit-log', {
        query: queryOf(tenantId, head.filters, cursor),
      });
      // An older page of a list the user has since replaced (another filter) is not this list's.
      if (shown.current !== head) return;
      setOlder((previous) => {
        const pages = previous?.after === head ? previous.pages : [];
        const last = previous?.after === head ? previous.cursor : head.page.next_cursor;
        // A second click on the same cursor answers the page already added.
        if (last !== cursor) return previous;
        return { after: head, pages: [...pages, page.data], cursor: page.next_cursor };
      });
    } catch (failure) {
      if (shown.current === head) setMoreError(failure);
    }
  };
  const entries = first.data ? [first.data.page.data, ...(olderShown?.pages ?? [])].flat() : [];
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
                <td>{withHiddenCharactersShown(entry.actor)}</td>
                <td>
                  <details>
                    <summary>show</summary>
                    <pre>
                      {withHiddenCharactersShown(JSON.stringify(entry.data, null, 2), { keepNewlines: true })}
                    </pre>
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
