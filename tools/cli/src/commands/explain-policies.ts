import type { PoliciesExplanation } from '@vantageedge/shared/domain/request-explanation';

/** The route policies of an explain answer (POST /api/v1/tenants/:id/explain), as the CLI prints them. */

type Transform = NonNullable<PoliciesExplanation['request_headers' | 'response_headers' | 'query']>;

function transformText(transform: Transform): string {
  const parts: string[] = [];
  for (const [name, value] of Object.entries(transform.set)) parts.push(`set ${name}=${value}`);
  for (const [name, value] of Object.entries(transform.add)) parts.push(`add ${name}=${value}`);
  for (const name of transform.remove) parts.push(`remove ${name}`);
  return parts.length === 0 ? 'none' : parts.join(', ');
}

const ms = (value: number | null) => (value === null ? '-' : `${value} ms`);

/**
 * One line per policy the route has, in the gateway's order: `early` (IP rules, CORS) run before
 * authentication, `late` after it; timeouts are always printed (some are always in force).
 */
export function formatPolicies(policies: PoliciesExplanation): { early: string[]; late: string[] } {
  const early: string[] = [];
  const lines: string[] = [];
  const { ip_rules: ipRules, cors } = policies;
  if (ipRules) {
    const lists = [
      ipRules.allow.length > 0 ? `allow ${ipRules.allow.join(' ')}` : null,
      ipRules.deny.length > 0 ? `deny ${ipRules.deny.join(' ')}` : null,
    ].filter((part) => part !== null);
    early.push(`IP rules  ${ipRules.source}: ${lists.join('; ')} → ${ipRules.verdict} (${ipRules.reason})`);
  }
  if (cors) {
    const status = cors.status === null ? '' : ` → ${cors.status}`;
    early.push(`CORS      ${cors.preflight ? 'preflight' : 'actual request'}${status}: ${cors.reason}`);
  }
  if (policies.fixed_response)
    lines.push(`Answer    fixed response ${policies.fixed_response.status} from the gateway`);
  if (policies.redirect) {
    lines.push(
      `Answer    redirect ${policies.redirect.status} to ${policies.redirect.location} from the gateway`,
    );
  }
  if (policies.request_headers) lines.push(`Headers   request: ${transformText(policies.request_headers)}`);
  if (policies.response_headers)
    lines.push(`Headers   response: ${transformText(policies.response_headers)}`);
  if (policies.query) lines.push(`Query     ${transformText(policies.query)}`);
  if (policies.rewrite_path) {
    lines.push(
      `Rewrite   ${policies.rewrite_path.rewritten ? `the origin sees ${policies.rewrite_path.path}` : 'the path does not match the rewrite; unchanged'}`,
    );
  }
  const { timeouts } = policies;
  lines.push(
    `Timeouts  connect ${ms(timeouts.connect_ms)}, response headers ${ms(timeouts.response_headers_ms)}, idle ${ms(timeouts.idle_ms)} (${timeouts.source})`,
  );
  if (policies.retries) {
    const { attempts, on, methods } = policies.retries;
    lines.push(`Retries   ${attempts} attempts in all, on ${on.join(', ')}, for ${methods.join(', ')}`);
  }
  if (policies.traffic_split) {
    const split = policies.traffic_split;
    const origins = split.origins
      .map((entry) => `${entry.origin_name ?? entry.origin_id} ${entry.percent}% (weight ${entry.weight})`)
      .join(', ');
    const sticky = split.sticky
      ? `; sticky on ${split.sticky.header ?? `cookie ${split.sticky.cookie}`}`
      : '';
    lines.push(`Split     ${origins}${sticky}; ${split.chosen_by}`);
  }
  return { early, late: lines };
}
