import { useState } from 'preact/hooks';
import { useApi } from '../api/context.js';
import { ErrorNotice } from '../ui/components.js';

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

interface RouteVerdict {
  id: string;
  path_pattern: string;
  methods: string[];
  rank: number | null;
  selected: boolean;
  reason: string;
}

/** The parts of POST /api/v1/tenants/:id/explain's answer this page shows. */
interface Explanation {
  host: { resolves: boolean; reason: string };
  path: { normalized: string | null; reason: string | null };
  routes: RouteVerdict[];
  auth: { mode: string; outcome: unknown; notes: string[] } | null;
  rate_limits: { policy_header: string | null } | null;
  cache: { decision: string; reason: string | null } | null;
  upstream: { origin_name: string | null; forwarded_path: string } | null;
  decision: { stage: string; status: number | null; code: string | null; message: string };
}

/** "Name: value" per line → a header map (lines without a colon are ignored). */
function parseHeaders(text: string): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return headers;
}

/** What the gateways would do with a request, computed by their own matcher and rules, now or at a past position. */
export function ExplainTab({ tenantId, subdomain }: { tenantId: string; subdomain: string }) {
  const api = useApi();
  const [method, setMethod] = useState<string>('GET');
  const [host, setHost] = useState(`${subdomain}.localhost`);
  const [path, setPath] = useState('/');
  const [headers, setHeaders] = useState('');
  const [atPosition, setAtPosition] = useState('');
  const [answer, setAnswer] = useState<Explanation | null>(null);
  const [error, setError] = useState<unknown>(null);

  async function explain(event: Event) {
    event.preventDefault();
    setError(null);
    try {
      const response = await api.send<Explanation>('POST', `/api/v1/tenants/${tenantId}/explain`, {
        body: {
          method,
          host,
          path,
          headers: parseHeaders(headers),
          ...(atPosition.trim() ? { at_position: atPosition.trim() } : {}),
        },
      });
      setAnswer(response.body);
    } catch (problem) {
      setAnswer(null);
      setError(problem);
    }
  }

  return (
    <div>
      <form id="explain-form" class="form" onSubmit={explain}>
        <label>
          Method
          <select name="method" value={method} onChange={(e) => setMethod(e.currentTarget.value)}>
            {METHODS.map((name) => (
              <option key={name}>{name}</option>
            ))}
          </select>
        </label>
        <label>
          Host
          <input name="host" value={host} onInput={(e) => setHost(e.currentTarget.value)} />
        </label>
        <label>
          Path (with query)
          <input name="path" value={path} onInput={(e) => setPath(e.currentTarget.value)} />
        </label>
        <label>
          Headers (one "Name: value" per line)
          <textarea
            name="headers"
            rows={3}
            value={headers}
            onInput={(e) => setHeaders(e.currentTarget.value)}
          />
        </label>
        <label>
          At event position (empty: now)
          <input
            name="at_position"
            value={atPosition}
            onInput={(e) => setAtPosition(e.currentTarget.value)}
          />
        </label>
        <button type="submit">Explain</button>
      </form>
      <ErrorNotice error={error} />
      {answer && (
        <>
          <p id="explain-decision" class={answer.decision.stage === 'origin' ? 'notice ok' : 'notice'}>
            <strong>{answer.decision.status ?? 'forwarded'}</strong>{' '}
            {answer.decision.code && <code>{answer.decision.code}</code>} {answer.decision.message}
          </p>
          <dl id="explain-summary">
            <dt>Host</dt>
            <dd>{answer.host.reason}</dd>
            <dt>Path</dt>
            <dd>{answer.path.normalized ?? answer.path.reason}</dd>
            <dt>Auth</dt>
            <dd>{answer.auth ? `${answer.auth.mode}: ${JSON.stringify(answer.auth.outcome)}` : '—'}</dd>
            <dt>Rate limits</dt>
            <dd>{answer.rate_limits?.policy_header ?? '—'}</dd>
            <dt>Cache</dt>
            <dd>
              {answer.cache
                ? `${answer.cache.decision}${answer.cache.reason ? ` (${answer.cache.reason})` : ''}`
                : '—'}
            </dd>
            <dt>Origin</dt>
            <dd>
              {answer.upstream
                ? `${answer.upstream.origin_name ?? '—'} ← ${answer.upstream.forwarded_path}`
                : '—'}
            </dd>
          </dl>
          <table id="explain-routes">
            <thead>
              <tr>
                <th>Order</th>
                <th>Route</th>
                <th>Methods</th>
                <th>Why</th>
              </tr>
            </thead>
            <tbody>
              {answer.routes.map((route) => (
                <tr
                  key={route.id}
                  class={route.selected ? 'selected' : ''}
                  data-selected={String(route.selected)}
                >
                  <td>{route.rank ?? '—'}</td>
                  <td>
                    <code>{route.path_pattern}</code>
                  </td>
                  <td>{route.methods.length === 0 ? 'any' : route.methods.join(' ')}</td>
                  <td>{route.reason}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </div>
  );
}
