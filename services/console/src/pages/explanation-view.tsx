import { quotaWindowText } from '@vantageedge/shared/domain/quota-window-text';
import type {
  PoliciesExplanation,
  QuotaExplanation,
  RequestExplanation,
} from '@vantageedge/shared/domain/request-explanation';
import { withHiddenCharactersShown } from '@vantageedge/shared/domain/visible-text';
import { Fragment } from 'preact';

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

/** Which quotas the request spends, and what is left of each. */
function quotaSummary(quota: QuotaExplanation): string {
  return [quota.reason, ...quota.windows.map((window) => quotaWindowText(window, quota.counts))].join('; ');
}

/** One row per policy of the route, in the order the gateways apply them. */
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

// The reasons and paths echo what the viewer typed and what the tenant wrote (route patterns, origin
// names, transforms): every text shown has its hidden characters made visible.
const shown = (text: string) => withHiddenCharactersShown(text);

/** What the gateways would do with the request explained: the decision, each step, and every route. */
export function ExplanationView({ answer }: { answer: RequestExplanation }) {
  return (
    <>
      <p id="explain-decision" class={answer.decision.stage === 'origin' ? 'notice ok' : 'notice'}>
        <strong>{answer.decision.status ?? 'forwarded'}</strong>{' '}
        {answer.decision.code && <code>{answer.decision.code}</code>} {shown(answer.decision.message)}
      </p>
      <dl id="explain-summary">
        <dt>Host</dt>
        <dd>{shown(answer.host.reason)}</dd>
        <dt>Path</dt>
        <dd>{shown(answer.path.normalized ?? answer.path.reason ?? '')}</dd>
        <dt>Auth</dt>
        <dd>{answer.auth ? shown(`${answer.auth.mode}: ${JSON.stringify(answer.auth.outcome)}`) : '—'}</dd>
        <dt>Rate limits</dt>
        <dd>{shown(answer.rate_limits?.policy_header ?? '—')}</dd>
        <dt>Quota</dt>
        <dd id="explain-quota">{answer.quota ? shown(quotaSummary(answer.quota)) : '—'}</dd>
        <dt>Cache</dt>
        <dd>
          {answer.cache
            ? shown(`${answer.cache.decision}${answer.cache.reason ? ` (${answer.cache.reason})` : ''}`)
            : '—'}
        </dd>
        <dt>Origin</dt>
        <dd>
          {answer.upstream
            ? shown(`${answer.upstream.origin_name ?? '—'} ← ${answer.upstream.forwarded_path}`)
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
                <dd data-policy={name}>{shown(text)}</dd>
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
                <code>{shown(route.path_pattern)}</code>
              </td>
              <td>{route.methods.length === 0 ? 'any' : shown(route.methods.join(' '))}</td>
              <td>{shown(route.reason)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}
