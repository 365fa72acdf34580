import { createRouteBody, HTTP_METHODS, updateRouteBody } from '@vantageedge/control-plane/schemas/requests';
import { AUTH_MODES } from '@vantageedge/shared/domain/gateway-config';
import { withHiddenCharactersShown } from '@vantageedge/shared/domain/visible-text';
import { useMemo, useState } from 'preact/hooks';
import { useApi } from '../api/context.js';
import type { Origin, Route } from '../api/resources.js';
import { ErrorNotice, Field, issuesFromProblem } from '../ui/components.js';
import { type FieldIssues, validate } from '../validation.js';

/** The editor's fields as typed; turned into the API's body by `bodyOf`. */
interface RouteForm {
  /** '' for none: a route that answers itself (fixed_response or redirect) needs no origin. */
  origin_id: string;
  path_pattern: string;
  methods: string[];
  priority: string;
  auth_mode: string;
  required_scopes: string;
  strip_prefix: string;
  rate_limit: string;
  cache_policy: string;
  allow_any_authenticated_user: boolean;
  require_tenant_org: boolean;
  preserve_host: boolean;
}

function formOf(route: Route | null, origins: readonly Origin[]): RouteForm {
  return {
    origin_id: route ? (route.origin_id ?? '') : (origins[0]?.id ?? ''),
    path_pattern: route?.path_pattern ?? '',
    methods: route?.methods ?? [],
    priority: String(route?.priority ?? 0),
    auth_mode: route?.auth_mode ?? 'public',
    required_scopes: (route?.required_scopes ?? []).join(', '),
    strip_prefix: route?.strip_prefix ?? '',
    rate_limit: route?.rate_limit ? JSON.stringify(route.rate_limit, null, 2) : '',
    cache_policy: route?.cache_policy ? JSON.stringify(route.cache_policy, null, 2) : '',
    allow_any_authenticated_user: route?.allow_any_authenticated_user ?? false,
    require_tenant_org: route?.require_tenant_org ?? true,
    preserve_host: route?.preserve_host ?? false,
  };
}

/** A JSON field: empty means null (no policy); text that is not JSON is an issue of that field. */
function jsonField(text: string, field: string, issues: FieldIssues): unknown {
  if (text.trim() === '') return null;
  try {
    return JSON.parse(text);
  } catch (error) {
    issues[field] = `is not JSON: ${(error as Error).message}`;
    return undefined;
  }
}

function bodyOf(
  form: RouteForm,
  tenantId: string | null,
): { body: Record<string, unknown>; issues: FieldIssues } {
  const issues: FieldIssues = {};
  const numeric = form.priority.trim() === '' ? 0 : Number(form.priority);
  const body: Record<string, unknown> = {
    ...(tenantId ? { tenant_id: tenantId } : {}),
    origin_id: form.origin_id === '' ? null : form.origin_id,
    path_pattern: form.path_pattern,
    methods: form.methods,
    priority: Number.isNaN(numeric) ? form.priority : numeric,
    auth_mode: form.auth_mode,
    required_scopes: form.required_scopes
      .split(',')
      .map((scope) => scope.trim())
      .filter((scope) => scope !== ''),
    strip_prefix: form.strip_prefix.trim() === '' ? null : form.strip_prefix.trim(),
    rate_limit: jsonField(form.rate_limit, 'rate_limit', issues),
    cache_policy: jsonField(form.cache_policy, 'cache_policy', issues),
    allow_any_authenticated_user: form.allow_any_authenticated_user,
    require_tenant_org: form.require_tenant_org,
    preserve_host: form.preserve_host,
  };
  return { body, issues };
}

const RATE_LIMIT_EXAMPLE = '{ "requests_per_second": 10, "burst": 20, "scope": "ip" }';
const CACHE_EXAMPLE = '{ "enabled": true, "ttl_seconds": 60 }';

/**
 * Creates a route (POST) or edits one (PATCH with If-Match). Every keystroke is checked with the
 * control plane's createRouteBody / updateRouteBody, so the editor shows the API's own messages before
 * anything is sent; what only the server knows (the origin's tenant, route limits) comes back as a 4xx
 * whose details land next to their fields.
 */
export function RouteEditor({
  tenantId,
  origins,
  route,
  etag,
  onSaved,
  onCancel,
  onReload,
}: {
  tenantId: string;
  origins: readonly Origin[];
  route: Route | null;
  etag: string | null;
  onSaved: (saved: Route) => void;
  onCancel?: () => void;
  /** Reads the route again (a 412: someone else changed it since this read). */
  onReload?: () => void;
}) {
  const api = useApi();
  const [form, setForm] = useState<RouteForm>(() => formOf(route, origins));
  const [touched, setTouched] = useState(false);
  const [serverIssues, setServerIssues] = useState<FieldIssues>({});
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  const checked = useMemo(() => {
    const { body, issues } = bodyOf(form, route ? null : tenantId);
    const result = validate(route ? updateRouteBody : createRouteBody, body);
    return { body, issues: { ...(result.ok ? {} : result.issues), ...issues } };
  }, [form, route, tenantId]);
  const issues = touched ? { ...serverIssues, ...checked.issues } : serverIssues;
  const valid = Object.keys(checked.issues).length === 0;
  const answersItself =
    route !== null && ((route.fixed_response ?? null) !== null || (route.redirect ?? null) !== null);

  const set = <K extends keyof RouteForm>(key: K, value: RouteForm[K]) => {
    setForm((previous) => ({ ...previous, [key]: value }));
    setTouched(true);
    setServerIssues({});
  };

  const submit = async (event: Event) => {
    event.preventDefault();
    setTouched(true);
    setError(null);
    if (!valid) return;
    setBusy(true);
    try {
      const response = route
        ? await api.send<Route>('PATCH', `/api/v1/routes/${route.id}`, {
            body: checked.body,
            headers: etag ? { 'if-match': etag } : {},
          })
        : await api.send<Route>('POST', '/api/v1/routes', { body: checked.body });
      onSaved(response.body);
      if (!route) {
        setForm(formOf(null, origins));
        setTouched(false);
      }
    } catch (failure) {
      setError(failure);
      setServerIssues(issuesFromProblem(failure));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="card route-editor" id={route ? `edit-route-${route.id}` : 'create-route'} onSubmit={submit}>
      <h2>{route ? `Edit ${route.path_pattern}` : 'New route'}</h2>
      <ErrorNotice error={error} onReload={onReload} />
      <div class="grid">
        <Field
          label="Path pattern"
          field="path_pattern"
          issues={issues}
          hint="/exact, /users/:id or /prefix/*"
        >
          <input
            name="path_pattern"
            value={form.path_pattern}
            placeholder="/api/orders/*"
            onInput={(e) => set('path_pattern', e.currentTarget.value)}
          />
        </Field>
        <Field label="Origin" field="origin_id" issues={issues}>
          <select
            name="origin_id"
            value={form.origin_id}
            onChange={(e) => set('origin_id', e.currentTarget.value)}
          >
            {answersItself && <option value="">none (answers itself)</option>}
            {origins.map((origin) => (
              <option key={origin.id} value={origin.id}>
                {withHiddenCharactersShown(origin.name)}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Authentication" field="auth_mode" issues={issues}>
          <select
            name="auth_mode"
            value={form.auth_mode}
            onChange={(e) => set('auth_mode', e.currentTarget.value)}
          >
            {AUTH_MODES.map((mode) => (
              <option key={mode} value={mode}>
                {mode}
              </option>
            ))}
          </select>
        </Field>
        <Field
          label="Priority"
          field="priority"
          issues={issues}
          hint="higher wins among equally specific routes"
        >
          <input
            name="priority"
            type="number"
            value={form.priority}
            onInput={(e) => set('priority', e.currentTarget.value)}
          />
        </Field>
        <Field label="Required scopes" field="required_scopes" issues={issues} hint="comma-separated">
          <input
            name="required_scopes"
            value={form.required_scopes}
            onInput={(e) => set('required_scopes', e.currentTarget.value)}
          />
        </Field>
        <Field label="Strip prefix" field="strip_prefix" issues={issues} hint="removed before proxying">
          <input
            name="strip_prefix"
            value={form.strip_prefix}
            onInput={(e) => set('strip_prefix', e.currentTarget.value)}
          />
        </Field>
      </div>
      <fieldset class="methods">
        <legend>Methods (none: every method)</legend>
        {HTTP_METHODS.map((method) => (
          <label key={method} class="inline">
            <input
              type="checkbox"
              name={`method-${method}`}
              checked={form.methods.includes(method)}
              onChange={(e) =>
                set(
                  'methods',
                  e.currentTarget.checked
                    ? [...form.methods, method]
                    : form.methods.filter((m) => m !== method),
                )
              }
            />
            {method}
          </label>
        ))}
        <Field label="" field="methods" issues={issues}>
          {null}
        </Field>
      </fieldset>
      <div class="inline-options">
        <label class="inline">
          <input
            type="checkbox"
            name="require_tenant_org"
            checked={form.require_tenant_org}
            onChange={(e) => set('require_tenant_org', e.currentTarget.checked)}
          />
          JWTs must belong to the tenant's organization
        </label>
        <label class="inline">
          <input
            type="checkbox"
            name="allow_any_authenticated_user"
            checked={form.allow_any_authenticated_user}
            onChange={(e) => set('allow_any_authenticated_user', e.currentTarget.checked)}
          />
          Any signed-in Clerk user
        </label>
        <label class="inline">
          <input
            type="checkbox"
            name="preserve_host"
            checked={form.preserve_host}
            onChange={(e) => set('preserve_host', e.currentTarget.checked)}
          />
          Send the client's Host to the origin (preserve_host)
        </label>
      </div>
      <div class="grid">
        <Field
          label="Rate limit (JSON, empty: none)"
          field="rate_limit"
          issues={issues}
          hint={RATE_LIMIT_EXAMPLE}
        >
          <textarea
            name="rate_limit"
            rows={5}
            spellcheck={false}
            value={form.rate_limit}
            onInput={(e) => set('rate_limit', e.currentTarget.value)}
          />
        </Field>
        <Field
          label="Cache policy (JSON, empty: none)"
          field="cache_policy"
          issues={issues}
          hint={CACHE_EXAMPLE}
        >
          <textarea
            name="cache_policy"
            rows={5}
            spellcheck={false}
            value={form.cache_policy}
            onInput={(e) => set('cache_policy', e.currentTarget.value)}
          />
        </Field>
      </div>
      <button type="submit" class="primary" disabled={busy || (touched && !valid)}>
        {route ? 'Save route' : 'Create route'}
      </button>
      {onCancel && (
        <button type="button" onClick={onCancel}>
          Cancel
        </button>
      )}
    </form>
  );
}
