import { quotaWindowText } from '@vantageedge/shared/domain/quota-window-text';
import {
  type PoliciesExplanation,
  type QuotaExplanation,
  type RequestExplanation,
  requestExplanation,
} from '@vantageedge/shared/domain/request-explanation';
import { withHiddenCharactersShown } from '@vantageedge/shared/domain/visible-text';
import { Fragment } from 'preact';
import { useRef, useState } from 'preact/hooks';
import { useApi } from '../api/context.js';
import { readAnswer } from '../api/read-answer.js';
import { ErrorNotice } from '../ui/components.js';

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

type Transform = NonNullable<PoliciesExplanation['request_headers' | 'response_headers' | 'query']>;

function transformText(transform: Transform): string {
  const parts = [
    ...Object.entries(transform.set).map(([name, value]) => `set ${name}=${value}`),
    ...Object.entries(transform.add).map(([name, value]) => `add ${name}=${value}`),
    ...transform.remove.map((name) => `remove ${name}`),
  ];
  return parts.length === 0 ? 'none' : parts.join(', ');
}

const ms = (value: number | null) => (value === null ? '—' : `${value} ms`);

/** One row per policy of the route, in the order the gateways apply them. */
/** Which quotas the request spends, and what is left of each. */
function quotaSummary(quota: QuotaExplanation): string {
  return [quota.reason, ...quota.windows.map((window) => quotaWindowText(window, quota.counts))].join('; ');
}

function policyRows(policies: PoliciesExplanation): Array<[name: string, text: string]> {
  const rows: Array<[string, string]> = [];
  if (policies.ip_rules) {
    rows.push(['IP rules', `${policies.ip_rules.verdict.replaceAll('_', ' ')}: ${policies.ip_rules.reason}`]);
  }
  if (policies.cors) {
    const status = policies.cors.status === null ? '' : ` (${policies.cors.status})`;
    rows.push([
      'CORS',
      `${policies.cors.preflight ? 'preflight' : 'actual request'}${status}: ${policies.cors.reason}`,
    ]);
  }
  if (policies.fixed_response)
    rows.push(['Fixed response', `${policies.fixed_response.status} from the gateway`]);
  if (policies.redirect)
    rows.push(['Redirect', `${policies.redirect.status} to ${policies.redirect.location}`]);
  if (policies.request_headers) rows.push(['Request headers', transformText(policies.request_headers)]);
  if (policies.response_headers) rows.push(['Response headers', transformText(policies.response_headers)]);
  if (policies.query) rows.push(['Query', transformText(policies.query)]);
  if (policies.rewrite_path) {
    rows.push([
      'Path rewrite',
      policies.rewrite_path.rewritten
        ? `the origin sees ${policies.rewrite_path.path}`
        : 'does not apply to this path',
    ]);
  }
  const { timeouts } = policies;
  rows.push([
    'Timeouts',
    `connect ${ms(timeouts.connect_ms)}, response headers ${ms(timeouts.response_headers_ms)}, idle ${ms(timeouts.idle_ms)} (${timeouts.source})`,
  ]);
  if (policies.retries) {
    const { attempts, on, methods } = policies.retries;
    rows.push(['Retries', `${attempts} attempts in all, on ${on.join(', ')}, for ${methods.join(', ')}`]);
  }
  if (policies.traffic_split) {
    const split = policies.traffic_split;
    const origins = split.origins
      .map((entry) => `${entry.origin_name ?? entry.origin_id} ${entry.percent}%`)
      .join(', ');
    const sticky = split.sticky
      ? `; sticky on ${split.sticky.header ?? `cookie ${split.sticky.cookie}`}`
      : '';
    rows.push(['Traffic split', `${origins}${sticky}; ${split.chosen_by}`]);
  }
  return rows;
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
  const [clientIp, setClientIp] = useState('');
  const [answer, setAnswer] = useState<RequestExplanation | null>(null);
  const [error, setError] = useState<unknown>(null);

  // Only the newest Explain's answer is shown: an earlier one answering late is for another request.
  const newest = useRef(0);

  async function explain(event: Event) {
    event.preventDefault();
    setError(null);
    const asked = ++newest.current;
    try {
      const response = await api.send<unknown>('POST', `/api/v1/tenants/${tenantId}/explain`, {
        body: {
          method,
          host,
          path,
          headers: parseHeaders(headers),
          ...(atPosition.trim() ? { at_position: atPosition.trim() } : {}),
          ...(clientIp.trim() ? { client_ip: clientIp.trim() } : {}),
        },
      });
      if (asked !== newest.current) return;
      setAnswer(readAnswer(requestExplanation, response.status, response.body));
    } catch (problem) {
      if (asked !== newest.current) return;
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
        <label>
          Client address (empty: IP rules depend on it)
          <input name="client_ip" value={clientIp} onInput={(e) => setClientIp(e.currentTarget.value)} />
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
            <dt>Quota</dt>
            <dd id="explain-quota">{answer.quota ? quotaSummary(answer.quota) : '—'}</dd>
            <dt>Cache</dt>
            <dd>
              {answer.cache
                ? `${answer.cache.decision}${answer.cache.reason ? ` (${answer.cache.reason})` : ''}`
                : '—'}
            </dd>
            <dt>Origin</dt>
            <dd>
              {answer.upstream
                ? `${withHiddenCharactersShown(answer.upstream.origin_name ?? '—')} ← ${answer.upstream.forwarded_path}`
                : '—'}
            </dd>
          </dl>
          {answer.policies && (
            <>
              <h3>Route policies</h3>
              <dl id="explain-policies">
                {policyRows(answer.policies).map(([name, text]) => (
                  <Fragment key={name}>
                    <dt>{name}</dt>
                    <dd data-policy={name}>{withHiddenCharactersShown(text)}</dd>
                  </Fragment>
                ))}
              </dl>
            </>
          )}
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
