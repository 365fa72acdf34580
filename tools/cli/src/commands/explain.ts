import { quotaWindowText } from '@vantageedge/shared/domain/quota-window-text';
import {
  type AuthExplanation,
  explainRequestHeaders,
  type QuotaExplanation,
  type RequestExplanation,
  requestExplanation,
} from '@vantageedge/shared/domain/request-explanation';
import type { CliContext } from '../context.js';
import { CliError, EXIT, type ExitCode } from '../exit-codes.js';
import { render, terminalText } from '../output.js';
import { baseDomainsOf, resolveTenant, tenantOfHost } from '../tenant-ref.js';
import { formatPolicies } from './explain-policies.js';

/**
 * `vantageedge explain GET https://acme.vantageedge.dev/api/users/1 -H 'x-api-key: …'`: what the
 * gateways would do with that request (POST /api/v1/tenants/:id/explain), now or at `--at` a past
 * event position. The credentials go to the admin API only; the answer never contains them.
 */

export interface ExplainOptions {
  header: string[];
  at?: string;
  atTime?: string;
  tenant?: string;
  clientIp?: string;
  json?: boolean;
}

// The rest starts at the / or ? that ends the host, so a URL that does not match is not retried with
// every shorter host (which rescanned the rest each time: quadratic in the host's length).
const REQUEST_URL = /^(https?):\/\/([^/?#\s]+)((?:[/?][^#\s]*)?)$/i;

/**
 * `https://host[:port]/path?query` split without normalising the path (the gateway does that). The
 * scheme is the client's as routes (`match.scheme`) and the cache key read it.
 */
export function splitRequestUrl(url: string): { scheme: 'http' | 'https'; host: string; path: string } {
  const match = REQUEST_URL.exec(url);
  if (!match) throw new CliError(EXIT.usage, `not an http(s) URL: ${url}`);
  const scheme = match[1]!.toLowerCase() === 'http' ? 'http' : 'https';
  const rest = match[3] ?? '';
  return { scheme, host: match[2]!, path: rest === '' ? '/' : rest.startsWith('?') ? `/${rest}` : rest };
}

/** `-H 'Name: value'` (curl's form) into a header map; repeated names keep every value. */
export function parseHeaders(lines: readonly string[]): Record<string, string | string[]> {
  return explainRequestHeaders(
    lines.map((line) => {
      const colon = line.indexOf(':');
      if (colon <= 0)
        throw new CliError(EXIT.usage, `a header is "Name: value", got ${JSON.stringify(line)}`);
      return [line.slice(0, colon).trim(), line.slice(colon + 1).trim()] as const;
    }),
  );
}

function methodsText(methods: readonly string[]): string {
  return methods.length === 0 ? 'ANY' : methods.join(',');
}

function credentialText(auth: AuthExplanation): string {
  const { credential } = auth;
  switch (credential.kind) {
    case 'none':
      return 'no credentials';
    case 'api_key':
      return credential.status === 'unknown'
        ? 'API key unknown to this tenant'
        : `API key "${credential.name ?? credential.api_key_id}" ${credential.status}${credential.scopes ? ` (scopes: ${credential.scopes.join(' ') || '-'})` : ''}`;
    default:
      return `${credential.verifier} token${credential.signature_checked ? ' (signature verified)' : ' (signature not checked here)'}`;
  }
}

/**
 * The explanation as people read it: one section per step, in the gateway's order. Names and reasons
 * come from the tenant's config, so each line is shown with its control characters escaped.
 */
export function formatExplanation(method: string, url: string, answer: RequestExplanation): string {
  const lines: string[] = [];
  const decision = answer.decision;
  lines.push(`${method} ${url}`);
  lines.push(`  config version ${answer.version} (event position ${answer.position})`);
  lines.push('');
  lines.push(
    `Decision  ${decision.status === null ? 'forwarded' : `${decision.status} ${decision.code}`} (at ${decision.stage}): ${decision.message}`,
  );
  lines.push(`Host      ${answer.host.host}: ${answer.host.reason}`);
  lines.push(`Path      ${answer.path.normalized ?? `refused (${answer.path.reason})`}`);
  const route = answer.route;
  lines.push(
    route
      ? `Route     ${methodsText(route.methods)} ${route.path_pattern} (priority ${route.priority}, id ${route.id}): ${route.reason}`
      : 'Route     none',
  );
  const others = answer.routes.filter((candidate) => !candidate.selected);
  if (others.length > 0) {
    lines.push('  other routes, in match order:');
    for (const other of others)
      lines.push(`    ${methodsText(other.methods)} ${other.path_pattern}: ${other.reason}`);
  }
  const policies = answer.policies ? formatPolicies(answer.policies) : { early: [], late: [] };
  lines.push(...policies.early);
  if (answer.auth) {
    const { auth } = answer;
    const scopes = auth.required_scopes.length > 0 ? `, requires ${auth.required_scopes.join(' ')}` : '';
    const result = auth.outcome.ok ? 'admitted' : `${auth.outcome.status} ${auth.outcome.code}`;
    lines.push(
      `Auth      ${auth.mode}${scopes}: ${credentialText(auth)} → ${result} (${auth.outcome.message})`,
    );
    for (const note of auth.notes) lines.push(`  note: ${note}`);
  }
  lines.push(...policies.late);
  if (answer.rate_limits) {
    const { limits, policy_header } = answer.rate_limits;
    lines.push(`Limits    ${limits.length === 0 ? 'none' : `RateLimit-Policy: ${policy_header}`}`);
    for (const limit of limits) {
      const rate =
        limit.algorithm === 'token_bucket'
          ? `burst ${limit.capacity}, ${limit.refill_per_second}/s`
          : `${limit.capacity} per ${limit.window_seconds}s`;
      lines.push(`    ${limit.name}: ${limit.algorithm} ${rate} (${limit.accuracy}), counter ${limit.key}`);
    }
  }
  if (answer.quota) lines.push(...formatQuota(answer.quota));
  if (answer.cache) {
    const { cache } = answer;
    const key = cache.key
      ? `, key ${cache.key.pattern}${cache.key.vary_headers.length > 0 ? `+${cache.key.vary_headers.join(',')}` : ''}${cache.key.per_caller ? ' per caller' : ' shared'}`
      : '';
    const ttl = cache.ttl_seconds !== undefined ? `, ttl ${cache.ttl_seconds}s` : '';
    lines.push(`Cache     ${cache.decision}${cache.reason ? ` (${cache.reason})` : ''}${ttl}${key}`);
  }
  if (answer.upstream) {
    const { upstream } = answer;
    const targets = upstream.targets
      ? upstream.targets.map((target) => `${target.url} (weight ${target.weight})`).join(', ')
      : 'origin missing from the config';
    const balancing = upstream.load_balancing ? `, ${upstream.load_balancing.algorithm}` : '';
    const host = upstream.host_header ? ` with Host ${upstream.host_header} (preserve_host)` : '';
    lines.push(
      `Upstream  ${upstream.origin_name ?? upstream.origin_id}: ${targets}${balancing}; the origin sees ${upstream.forwarded_path}${host}`,
    );
    const tls = upstream.tls;
    // Only what differs from the default (https certificates verified against the gateways' store).
    const depth = tls?.verify_depth ?? null;
    if (tls && (!tls.verify || tls.server_name !== null || tls.own_ca_certificates || depth !== null)) {
      const how = !tls.verify
        ? 'https certificates NOT verified'
        : `https certificates verified${tls.server_name === null ? '' : ` for ${tls.server_name}`}${tls.own_ca_certificates ? " against the origin's own CAs" : ''}${depth === null ? '' : `, at most ${depth} intermediate CAs`}`;
      lines.push(`          ${how}`);
    }
    if (tls?.client_certificate_id) {
      lines.push(`          presents client certificate ${tls.client_certificate_id} to the origin`);
    }
  }
  return lines.map((line) => terminalText(line)).join('\n');
}

/** The quota windows the request spends, each with what is left of it when the counts were read. */
function formatQuota(quota: QuotaExplanation): string[] {
  if (quota.windows.length === 0) return [`Quota     none (${quota.reason})`];
  return [
    `Quota     ${quota.reason}`,
    ...quota.windows.map((window) => `    ${quotaWindowText(window, quota.counts)}`),
  ];
}

export async function explain(
  ctx: CliContext,
  method: string,
  url: string,
  options: ExplainOptions,
): Promise<ExitCode> {
  const { scheme, host, path } = splitRequestUrl(url);
  const headers = parseHeaders(options.header);
  const client = await ctx.client();
  const tenant = options.tenant
    ? await resolveTenant(client, options.tenant)
    : await tenantOfHost(client, host, baseDomainsOf(ctx.env));
  const response = await client.request('POST', `/api/v1/tenants/${tenant.id}/explain`, {
    body: {
      // The admin API explains the method as sent (the gateways refuse `get`); typed here, it means GET.
      method: method.toUpperCase(),
      scheme,
      host,
      path,
      headers,
      ...(options.at !== undefined ? { at_position: options.at } : {}),
      ...(options.atTime !== undefined ? { at_time: options.atTime } : {}),
      ...(options.clientIp !== undefined ? { client_ip: options.clientIp } : {}),
    },
    readOnly: true,
  });
  const answer = readExplanation(response.body);
  // The tenant was found by the host as the CLI sees it (its base domains, the claims it may read);
  // a config that does not serve the host (a pending claim, another version) is no answer for it.
  if (!options.tenant && !answer.host.resolves) {
    throw new CliError(
      EXIT.notFound,
      `${tenant.subdomain} does not serve ${host} (${answer.host.reason}); name the host's tenant with -t`,
    );
  }
  const format = options.json ? 'json' : ctx.output;
  // --json and --output yaml print the answer as the admin API sent it.
  ctx.stdout(render(response.body, format, () => formatExplanation(method.toUpperCase(), url, answer)));
  return EXIT.ok;
}

/** The admin API's answer checked against the explain answer's schema; anything else is refused, saying where. */
export function readExplanation(body: unknown): RequestExplanation {
  const parsed = requestExplanation.safeParse(body);
  if (parsed.success) return parsed.data;
  throw new CliError(
    EXIT.unavailable,
    'the admin API answered explain with something this CLI cannot read (another version of VantageEdge?)',
    parsed.error.issues.slice(0, 5).map((issue) => ({
      field: issue.path.length === 0 ? '(the answer)' : issue.path.map(String).join('.'),
      issue: issue.message,
    })),
  );
}
