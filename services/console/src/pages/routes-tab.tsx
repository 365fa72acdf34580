import { withHiddenCharactersShown } from '@vantageedge/shared/domain/visible-text';
import { useState } from 'preact/hooks';
import { ifMatchListed } from '../api/client.js';
import { useApi } from '../api/context.js';
import type { Listed, Origin, Route, Tenant } from '../api/resources.js';
import { Empty, ErrorNotice, Loading } from '../ui/components.js';
import { useAsync } from '../ui/use-async.js';
import { useEditedResource } from '../ui/use-edited-resource.js';
import { RouteEditor } from './route-editor.js';

export function RoutesTab({ tenant }: { tenant: Tenant }) {
  const api = useApi();
  const data = useAsync(async () => {
    const query = { tenant_id: tenant.id };
    const [routes, origins] = await Promise.all([
      api.getAll<Listed<Route>>('/api/v1/routes', { query }),
      api.getAll<Origin>('/api/v1/origins', { query }),
    ]);
    return { routes, origins };
  }, [tenant.id]);
  const [error, setError] = useState<unknown>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const editor = useEditedResource<Route>(setError);
  const editing = editor.edited;

  const edit = (route: Route) => {
    setError(null);
    return editor.open(() => api.send<Route>('GET', `/api/v1/routes/${route.id}`));
  };
  // The route as listed: one changed since is refused with 412, never deleted unseen.
  const remove = async (route: Listed<Route>) => {
    if (!window.confirm(`Delete route ${route.path_pattern}?`)) return;
    setError(null);
    try {
      await api.send('DELETE', `/api/v1/routes/${route.id}`, { headers: ifMatchListed(route) });
      data.reload();
    } catch (failure) {
      setError(failure);
    }
  };
  const purge = async (route: Route) => {
    setError(null);
    try {
      await api.send('POST', `/api/v1/routes/${route.id}/cache/purge`);
      setNotice(`Cached responses of ${route.path_pattern} purged on every replica.`);
    } catch (failure) {
      setError(failure);
    }
  };

  // A route that answers itself (fixed response or redirect) has no origin.
  const originName = (id: string | null) =>
    id === null
      ? '— (answers itself)'
      : withHiddenCharactersShown(data.data?.origins.find((origin) => origin.id === id)?.name ?? id);
  return (
    <div>
      <ErrorNotice
        error={data.error ?? error}
        edits={false}
        onReload={() => {
          setError(null);
          data.reload();
        }}
      />
      {notice && <div class="notice ok">{notice}</div>}
      {data.loading && !data.data && <Loading what="routes" />}
      {data.data && data.data.routes.length === 0 && <Empty>No route yet.</Empty>}
      {data.data && data.data.routes.length > 0 && (
        <table id="routes">
          <thead>
            <tr>
              <th>Path</th>
              <th>Methods</th>
              <th>Auth</th>
              <th>Origin</th>
              <th>Rate limit</th>
              <th>Cache</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {data.data.routes.map((route) => (
              <tr key={route.id} data-route={route.path_pattern}>
                <td>
                  <code>{route.path_pattern}</code>
                  <div class="muted small">
                    {tenant.subdomain}.…{route.path_pattern}
                  </div>
                </td>
                <td>{route.methods.length === 0 ? 'any' : route.methods.join(' ')}</td>
                <td>{route.auth_mode}</td>
                <td>{originName(route.origin_id)}</td>
                <td>
                  {route.rate_limit
                    ? `${route.rate_limit.requests_per_second}/s per ${route.rate_limit.scope}`
                    : '—'}
                </td>
                <td>{route.cache_policy?.enabled ? `${route.cache_policy.ttl_seconds} s` : '—'}</td>
                <td class="actions">
                  <button type="button" class="small" onClick={() => edit(route)}>
                    Edit
                  </button>
                  {route.cache_policy?.enabled && (
                    <button type="button" class="small" onClick={() => purge(route)}>
                      Purge cache
                    </button>
                  )}
                  <button type="button" class="danger small" onClick={() => remove(route)}>
                    Delete
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {data.data && editing && (
        // Keyed by the read as well as the route: reading the route again (after a 412) starts the
        // form from that read, so its ETag never guards fields of an older one.
        <RouteEditor
          key={`${editing.resource.id} ${editing.etag}`}
          tenantId={tenant.id}
          origins={data.data.origins}
          route={editing.resource}
          etag={editing.etag}
          onSaved={() => {
            editor.close();
            data.reload();
          }}
          onCancel={() => editor.close()}
          onReload={() => edit(editing.resource)}
        />
      )}
      {data.data && data.data.origins.length === 0 && (
        <Empty>Create an origin first: a route proxies to one.</Empty>
      )}
      {data.data && data.data.origins.length > 0 && !editing && (
        <RouteEditor
          tenantId={tenant.id}
          origins={data.data.origins}
          route={null}
          etag={null}
          onSaved={data.reload}
        />
      )}
    </div>
  );
}
