import { withHiddenCharactersShown } from '@vantageedge/shared/domain/visible-text';
import { useState } from 'preact/hooks';
import { useApi } from '../api/context.js';
import type { ApiKey, Route, UsageReport } from '../api/resources.js';
import { ErrorNotice, Loading } from '../ui/components.js';
import { useAsync } from '../ui/use-async.js';
import { UsageChart } from './usage-chart.js';

const CLASSES = ['2xx', '3xx', '4xx', '5xx', '1xx'] as const;
const OVERFLOW = 'others (over the usage limit)';

/**
 * The tenant's requests as the gateways counted them (GET /api/v1/usage): per hour (the last 24) or
 * per day (the last 30), by status class, with the routes, API keys and users that made them.
 */
export function UsageTab({ tenantId }: { tenantId: string }) {
  const api = useApi();
  const [granularity, setGranularity] = useState<'hour' | 'day'>('hour');
  const [apiKeyId, setApiKeyId] = useState('');
  const names = useAsync(async () => {
    const [routes, keys] = await Promise.all([
      api.getAll<Route>('/api/v1/routes', { query: { tenant_id: tenantId } }),
      api.getAll<ApiKey>('/api/v1/api-keys', { query: { tenant_id: tenantId } }),
    ]);
    return {
      routes: new Map(routes.map((route) => [route.id, route.path_pattern])),
      keys: new Map(keys.map((key) => [key.id, withHiddenCharactersShown(key.name)])),
    };
  }, [tenantId]);
  const usage = useAsync(() => {
    const periods = granularity === 'hour' ? 24 : 30;
    const now = Date.now();
    const from = new Date(now - (periods - 1) * (granularity === 'hour' ? 3_600_000 : 86_400_000));
    return api.get<UsageReport>('/api/v1/usage', {
      query: {
        tenant_id: tenantId,
        api_key_id: apiKeyId || undefined,
        granularity,
        from: from.toISOString(),
      },
    });
  }, [tenantId, granularity, apiKeyId]);

  const report = usage.data;
  // `*`: what the gateways counted past their per-tenant limits, not one route, key or user.
  const routeName = (id: string | null) =>
    id === null ? 'no route matched' : id === '*' ? OVERFLOW : (names.data?.routes.get(id) ?? id);
  const keyName = (id: string | null) =>
    id === null ? 'no API key' : id === '*' ? OVERFLOW : (names.data?.keys.get(id) ?? id);
  const userName = (id: string | null) => (id === null ? 'no user' : id === '*' ? OVERFLOW : id);

  return (
    <div>
      <form class="filters" id="usage-filters" onSubmit={(event) => event.preventDefault()}>
        <label>
          Per
          <select
            name="granularity"
            value={granularity}
            onChange={(e) => setGranularity(e.currentTarget.value as 'hour' | 'day')}
          >
            <option value="hour">hour (last 24)</option>
            <option value="day">day (last 30, UTC)</option>
          </select>
        </label>
        <label>
          API key
          <select name="api_key_id" value={apiKeyId} onChange={(e) => setApiKeyId(e.currentTarget.value)}>
            <option value="">all requests</option>
            {[...(names.data?.keys ?? [])].map(([id, name]) => (
              <option key={id} value={id}>
                {name}
              </option>
            ))}
          </select>
        </label>
        <button type="button" class="small" onClick={usage.reload}>
          Refresh
        </button>
      </form>
      <ErrorNotice error={usage.error ?? names.error} />
      {!report && usage.loading && <Loading what="usage" />}
      {report && (
        <>
          <p class="muted">
            Counted by every gateway replica and added up every few seconds; the newest requests appear after
            the next flush.
          </p>
          <dl class="facts" id="usage-summary">
            <dt>Requests</dt>
            <dd id="usage-total">{report.requests}</dd>
            {CLASSES.map((statusClass) => (
              <>
                <dt key={`${statusClass}-label`}>{statusClass}</dt>
                <dd key={statusClass} data-class={statusClass}>
                  {report.by_status_class[statusClass]}
                </dd>
              </>
            ))}
          </dl>
          <UsageChart points={report.data} granularity={report.granularity} />
          <div class="grid">
            <Breakdown id="usage-by-route" title="Routes" rows={report.by_route} label={routeName} />
            <Breakdown id="usage-by-key" title="API keys" rows={report.by_api_key} label={keyName} />
            <Breakdown id="usage-by-user" title="Users" rows={report.by_user} label={userName} />
          </div>
        </>
      )}
    </div>
  );
}

function Breakdown({
  id,
  title,
  rows,
  label,
}: {
  id: string;
  title: string;
  rows: UsageReport['by_route'];
  label: (id: string | null) => string;
}) {
  return (
    <section class="card">
      <h2>{title}</h2>
      {rows.length === 0 ? (
        <p class="muted empty">No requests.</p>
      ) : (
        <table id={id}>
          <thead>
            <tr>
              <th />
              <th>Requests</th>
              <th>2xx</th>
              <th>4xx</th>
              <th>5xx</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((row) => (
              <tr key={row.id ?? 'none'} data-id={row.id ?? ''}>
                <td>{withHiddenCharactersShown(label(row.id))}</td>
                <td>{row.requests}</td>
                <td>{row.by_status_class['2xx']}</td>
                <td>{row.by_status_class['4xx']}</td>
                <td>{row.by_status_class['5xx']}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
