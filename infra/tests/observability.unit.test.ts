import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { dashboards, metricsOf, OBSERVABILITY, queries, rules } from './observability-pack.js';

/**
 * The operations pack (infra/observability) against the code: every series a dashboard or rule reads
 * is one a service exports (or a recording rule makes), and labels are named alike everywhere.
 * `make test-ops` additionally runs promtool on the rules.
 */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'node_modules' ? [] : sourceFiles(full);
    return entry.name.endsWith('.ts') && !entry.name.includes('.test.') ? [full] : [];
  });
}

const sources = ['services', 'projections', 'shared'].flatMap((dir) => sourceFiles(path.join(ROOT, dir)));
const exported = new Set(
  sources.flatMap((file) =>
    [...readFileSync(file, 'utf8').matchAll(/name: '(vantageedge_[a-z0-9_]+)'/g)].map((m) => m[1]),
  ),
);
const recorded = new Set(rules.flatMap((rule) => (rule.record ? [rule.record] : [])));

/**
 * Each exported metric's label names, from its registration (`name: '…'` followed by `labelNames: [...]`,
 * or a constant array of the same file), plus `service` (every series) and what Prometheus adds.
 */
const labelNames = new Map<string, Set<string>>();
for (const file of sources) {
  const text = readFileSync(file, 'utf8');
  const arrays = new Map(
    [...text.matchAll(/const (\w+)\s*=\s*\[([^\]]*)\]/g)].map((m) => [
      m[1],
      [...(m[2] ?? '').matchAll(/'(\w+)'/g)],
    ]),
  );
  for (const registration of text.matchAll(/name: '(vantageedge_[a-z0-9_]+)'[\s\S]*?(?=\n\s*\}\))/g)) {
    const declared = /labelNames:\s*(\[[^\]]*\]|\w+)/.exec(registration[0])?.[1] ?? '[]';
    const names = new Set(['service', 'job', 'instance']);
    const add = (list: string) => {
      for (const [, name] of list.matchAll(/'(\w+)'/g)) names.add(name ?? '');
      for (const [, constant] of list.matchAll(/(?:\.\.\.)?\b([A-Z_]+)\b/g))
        for (const [, name] of arrays.get(constant) ?? []) names.add(name ?? '');
    };
    add(declared);
    labelNames.set(registration[1] ?? '', names);
  }
}
/** The labels a recording rule's series keep: those of its outermost `by (…)`. */
const recordedLabels = new Map(
  rules.flatMap((rule) => {
    if (!rule.record) return [];
    const by = /^\s*(?:sum|max|min|count|avg)\s+by\s*\(([^)]*)\)/.exec(rule.expr)?.[1] ?? '';
    return [[rule.record, new Set(by.split(',').map((name) => name.trim()))] as const];
  }),
);
function labelsOfSeries(name: string): Set<string> | undefined {
  const family = labelNames.get(name) ?? labelNames.get(name.replace(/_(bucket|count|sum)$/, ''));
  if (family && name.endsWith('_bucket')) return new Set([...family, 'le']);
  return family ?? recordedLabels.get(name);
}
const SERIES = /(?<![\w:])((?:[a-z_]+:)?vantageedge_[a-z0-9_]+(?::[a-z0-9_]+)?)(?![\w:])/g;

describe('observability pack', () => {
  it('has a gateway and a control-plane dashboard, each panel with a query', () => {
    expect(dashboards.map((d) => d.json.uid).sort()).toEqual([
      'vantageedge-control-plane',
      'vantageedge-gateway',
    ]);
    for (const { name, json } of dashboards)
      for (const panel of json.panels.filter((p) => p.type !== 'row'))
        expect(panel.targets?.length, `${name}: ${panel.title}`).toBeGreaterThan(0);
  });

  it('reads only series the services export or a recording rule makes', () => {
    expect(exported.size).toBeGreaterThan(30);
    for (const { where, expr } of queries) {
      // Metric names, not the middle part of a recording rule name (level:metric:operations).
      for (const [name] of expr.matchAll(/(?<![:\w])vantageedge_[a-z0-9_]+(?![\w:])/g)) {
        const base = name.replace(/_(bucket|count|sum)$/, '');
        expect(exported.has(base) || exported.has(name), `${where}: ${name}`).toBe(true);
      }
      for (const [name] of expr.matchAll(/\b[a-z_]+:[a-z0-9_]+:[a-z0-9_]+\b/g))
        expect(recorded.has(name), `${where}: ${name}`).toBe(true);
    }
  });

  it('filters, groups and joins each series only by labels it has', () => {
    expect(labelNames.get('vantageedge_upstream_circuit_state')).toEqual(
      new Set(['service', 'job', 'instance', 'tenant', 'origin', 'target']),
    );
    const missing: string[] = [];
    const check = (where: string, series: string, label: string) => {
      const labels = labelsOfSeries(series);
      if (labels && label !== '' && !labels.has(label))
        missing.push(`${where}: ${series} has no label ${label}`);
    };
    for (const { where, expr } of queries) {
      for (const [, series, matchers] of expr.matchAll(
        /(?<![\w:])((?:[a-z_]+:)?vantageedge_[a-z0-9_]+(?::[a-z0-9_]+)?)\{([^}]*)\}/g,
      ))
        for (const [, label] of (matchers ?? '').matchAll(/([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)/g))
          check(where, series ?? '', label ?? '');
      // An aggregation's `by (…)`: every series it aggregates must have each label.
      for (const aggregation of expr.matchAll(
        /\b(?:sum|max|min|count|avg|topk|bottomk)\s+by\s*\(([^)]*)\)\s*\(/g,
      )) {
        let depth = 1;
        let end = aggregation.index + aggregation[0].length;
        for (; end < expr.length && depth > 0; end += 1)
          depth += expr[end] === '(' ? 1 : expr[end] === ')' ? -1 : 0;
        const body = expr.slice(aggregation.index + aggregation[0].length, end);
        for (const [, series] of body.matchAll(SERIES))
          for (const label of (aggregation[1] ?? '').split(',').map((name) => name.trim()))
            if (label !== 'le') check(where, series ?? '', label);
      }
      for (const [, list] of expr.matchAll(/\b(?:on|ignoring)\s*\(([^)]*)\)/g))
        for (const [, series] of expr.matchAll(SERIES))
          for (const label of (list ?? '').split(',').map((name) => name.trim()))
            check(where, series ?? '', label);
    }
    expect(missing).toEqual([]);
  });

  // Regression: the rate-limit and cache modules labelled series tenant_id/route_id while the rest of
  // the gateway used tenant/route, so no query could join them.
  it('names the tenant and route labels alike in every metric module and query', () => {
    for (const file of sources) {
      const text = readFileSync(file, 'utf8');
      for (const labels of text.matchAll(/labelNames: \[([^\]]*)\]/g))
        expect(labels[1], path.relative(ROOT, file)).not.toMatch(/'(tenant_id|route_id)'/);
    }
    for (const { where, expr } of queries) expect(expr, where).not.toMatch(/\b(tenant_id|route_id)\b/);
  });

  it('covers the alerts operators need', () => {
    const alerts = rules.flatMap((rule) => (rule.alert ? [rule.alert] : []));
    expect(alerts).toEqual(
      expect.arrayContaining([
        'VantageEdgeGatewayHighErrorRate',
        'VantageEdgeOriginFailuresWidespread',
        'VantageEdgeTenantOriginErrors',
        'VantageEdgeGatewayHighLatencyP99',
        'VantageEdgeProjectorLagging',
        'VantageEdgeReplicaStaleConfig',
        'VantageEdgeRedisDown',
        'VantageEdgeKafkaDown',
        'VantageEdgeProjectorParkedEvents',
        'VantageEdgeProjectorTenantsQuarantined',
        'VantageEdgeControlPlaneRateLimitStoreErrors',
        'VantageEdgeAdminApiRateLimitedSustained',
        'VantageEdgeGatewayUsageDropped',
        'VantageEdgeUsageBatchMovedAside',
        'VantageEdgeTenantUpstreamLimit',
        'VantageEdgeTenantOriginTlsBudget',
        'VantageEdgeRateLimitCallerKeysOverflow',
      ]),
    );
  });

  // The platform pages on the 5xx the gateway fails itself, never on those a tenant, its clients or its
  // origins bring about (any of them could page the platform's operators at will): every 5xx code the
  // gateway answers with is placed on one side, so a new one is a decision, not an accident.
  it("classifies every 5xx code the gateway answers with as the platform's, or a tenant's or its origins'", () => {
    const PLATFORM_5XX = ['internal_error', 'rate_limit_unavailable', 'shutting_down'];
    // Answered with a code held in a constant (the rate limit's refusals, a route's own answer).
    const codes = new Set(['rate_limit_unavailable', 'limit_checks_busy', 'fixed_response']);
    const answers = [
      /(?:failExchange\(\s*exchange,|originFailed\(\s*exchange,|refuse\()\s*5\d\d,\s*'([a-z_]+)'/g,
      /status:\s*5\d\d,\s*code:\s*'([a-z_]+)'/g,
    ];
    for (const file of sources.filter((f) => f.includes(`${path.sep}gateway${path.sep}src${path.sep}`)))
      for (const pattern of answers)
        for (const [, code] of readFileSync(file, 'utf8').matchAll(pattern)) codes.add(code ?? '');
    expect(codes.size).toBeGreaterThan(10);

    const recordedExpr = (name: string) => rules.find((rule) => rule.record === name)?.expr ?? '';
    const listed = (expr: string, operator: '=~' | '!~') =>
      (new RegExp(`code${operator}"([^"]+)"`).exec(expr)?.[1] ?? '').split('|');
    const notPlatform = listed(recordedExpr('job:vantageedge_gateway_platform_5xx:ratio_rate5m'), '!~');
    const ofOrigins = listed(recordedExpr('tenant:vantageedge_gateway_origin_5xx:ratio_rate5m'), '=~');
    for (const code of codes)
      expect(
        PLATFORM_5XX.includes(code) !== notPlatform.includes(code),
        `${code}: the platform's (${PLATFORM_5XX.join(', ')}) or out of the platform's 5xx ratio`,
      ).toBe(true);
    // "origin": what an origin answered itself; no other name in the lists is a code the gateway lacks.
    for (const code of [...notPlatform, ...ofOrigins])
      expect(code === 'origin' || codes.has(code), code).toBe(true);
    for (const code of ofOrigins) expect(notPlatform, code).toContain(code);
  });

  // Regression: docs/deployment.md sent operators to the pack's "refused snapshots" alert for a gateway
  // skipping a tenant's snapshot it cannot read (the tenant keeps its previous config there), but that
  // alert only read the projector's publish failures: nothing fired on the gateways' own counters.
  it('alerts when a gateway cannot read or apply a tenant snapshot', () => {
    const alerting = rules.filter((rule) => rule.alert).map((rule) => rule.expr);
    for (const metric of [
      'vantageedge_config_invalid_messages_total',
      'vantageedge_config_apply_errors_total',
    ])
      expect(
        alerting.some((expr) => expr.includes(metric)),
        metric,
      ).toBe(true);
  });

  it('gives every alert a severity, a summary and a description, and a promtool case where it fires', () => {
    interface PromtoolTests {
      tests: Array<{ alert_rule_test?: Array<{ alertname: string; exp_alerts: unknown[] }> }>;
    }
    const fired = new Set(
      readdirSync(path.join(OBSERVABILITY, 'prometheus/tests')).flatMap((name) =>
        (
          parse(readFileSync(path.join(OBSERVABILITY, 'prometheus/tests', name), 'utf8')) as PromtoolTests
        ).tests.flatMap((test) =>
          (test.alert_rule_test ?? []).filter((t) => t.exp_alerts.length > 0).map((t) => t.alertname),
        ),
      ),
    );
    for (const rule of rules.filter((r) => r.alert)) {
      expect(['critical', 'warning'], `${rule.alert}: severity`).toContain(rule.labels?.['severity']);
      expect(rule.annotations?.['summary'], `${rule.alert}: summary`).toBeTruthy();
      expect(rule.annotations?.['description'], `${rule.alert}: description`).toBeTruthy();
      expect(fired.has(rule.alert ?? ''), `${rule.alert}: no promtool case where it fires`).toBe(true);
    }
  });

  // Regression: 11 of the 24 alerts were named nowhere in the docs (VantageEdgeKafkaDown,
  // VantageEdgeReplicaStaleConfig, VantageEdgeUpstreamCircuitOpen, …): the operator paged had the
  // alert's one-line description and nothing saying which series to look at or what to do.
  it('has a runbook entry for every alert, naming the series it reads and what to do', () => {
    const deployment = readFileSync(path.join(ROOT, 'docs/deployment.md'), 'utf8');
    const runbook = /^### Runbook\b[^\n]*\n([\s\S]*?)(?=^## |^### )/m.exec(deployment)?.[1] ?? '';
    const entries = new Map(
      [...runbook.matchAll(/^#### (\w+)\n([\s\S]*?)(?=^#### |(?![\s\S]))/gm)].map((m) => [m[1], m[2] ?? '']),
    );
    const alerting = rules.filter((rule) => rule.alert);
    expect([...entries.keys()].sort()).toEqual(alerting.map((rule) => rule.alert).sort());
    for (const rule of alerting) {
      const entry = entries.get(rule.alert ?? '') ?? '';
      const read = [
        ...metricsOf(rule.expr),
        ...[...rule.expr.matchAll(/\b[a-z_]+:[a-z0-9_]+:[a-z0-9_]+\b/g)].map(([name]) => name),
      ];
      // In code font, a selector or range allowed after it.
      for (const series of read)
        expect(entry, `${rule.alert}: ${series}`).toMatch(new RegExp(`\`${series}(?![\\w:])[^\`]*\``));
      expect(entry, `${rule.alert}: what to do`).toContain('**Do:**');
    }
  });

  // A tenant's frozen config (parked events), the admin API's limits, usage counting, retries and
  // resends to origins, certificate expiry, rejected credentials, WebSockets and dropped access-log
  // lines, on the dashboard of the service that exports them.
  it('shows the projector quarantine, admin rate limits, usage, retries, certificates and clients on their dashboards', () => {
    const shown = (uid: string) =>
      dashboards
        .filter(({ json }) => json.uid === uid)
        .flatMap(({ json }) => json.panels.flatMap((panel) => (panel.targets ?? []).map((t) => t.expr)))
        .join('\n');
    const expected: Record<string, string[]> = {
      'vantageedge-control-plane': [
        'vantageedge_projector_parked_events_total',
        'vantageedge_projector_quarantined_tenants',
        'vantageedge_control_plane_admin_rate_limited_total',
        'vantageedge_control_plane_admin_rate_limit_store_errors_total',
      ],
      'vantageedge-gateway': [
        'vantageedge_gateway_usage_overflow_requests_total',
        'vantageedge_gateway_usage_dropped_requests_total',
        'vantageedge_gateway_upstream_retries_total',
        'vantageedge_gateway_upstream_resends_total',
        'vantageedge_gateway_client_upstream_limit_refusals_total',
        'vantageedge_gateway_tls_certificate_expiry_days',
        'vantageedge_gateway_tls_handshake_errors_total',
        'vantageedge_gateway_auth_failures_total',
        'vantageedge_gateway_websocket_connections_open',
        'vantageedge_gateway_access_log_dropped_total',
      ],
    };
    for (const [uid, metrics] of Object.entries(expected))
      for (const metric of metrics) {
        expect(exported.has(metric), `${metric} is exported`).toBe(true);
        expect(shown(uid), `${uid}: ${metric}`).toContain(metric);
      }
  });
});
