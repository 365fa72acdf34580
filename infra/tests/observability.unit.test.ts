import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { dashboards, OBSERVABILITY, queries, rules } from './observability-pack.js';

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

  // A tenant's frozen config (parked events), the admin API's limits and usage counting, on the
  // dashboard of the service that exports them.
  it('shows the projector quarantine, admin rate limits and usage counting on their dashboards', () => {
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
      ],
    };
    for (const [uid, metrics] of Object.entries(expected))
      for (const metric of metrics) {
        expect(exported.has(metric), `${metric} is exported`).toBe(true);
        expect(shown(uid), `${uid}: ${metric}`).toContain(metric);
      }
  });
});
