import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

/**
 * The operations pack (infra/observability) against the code: every series a dashboard or rule reads
 * is one a service exports (or a recording rule makes), and labels are named alike everywhere.
 * `make test-ops` additionally runs promtool on the rules.
 */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const OBSERVABILITY = path.join(ROOT, 'infra/observability');

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

interface RuleFile {
  groups: Array<{ rules: Array<{ record?: string; alert?: string; expr: string }> }>;
}
const ruleFiles = readdirSync(path.join(OBSERVABILITY, 'prometheus/rules')).map(
  (name) => parse(readFileSync(path.join(OBSERVABILITY, 'prometheus/rules', name), 'utf8')) as RuleFile,
);
const rules = ruleFiles.flatMap((file) => file.groups.flatMap((group) => group.rules));
const recorded = new Set(rules.flatMap((rule) => (rule.record ? [rule.record] : [])));

interface Panel {
  title: string;
  type: string;
  targets?: Array<{ expr: string }>;
}
const dashboards = readdirSync(path.join(OBSERVABILITY, 'grafana/dashboards')).map((name) => ({
  name,
  json: JSON.parse(readFileSync(path.join(OBSERVABILITY, 'grafana/dashboards', name), 'utf8')) as {
    uid: string;
    panels: Panel[];
  },
}));

const queries: Array<{ where: string; expr: string }> = [
  ...rules.map((rule) => ({ where: `rule ${rule.record ?? rule.alert}`, expr: rule.expr })),
  ...dashboards.flatMap(({ name, json }) =>
    json.panels.flatMap((panel) =>
      (panel.targets ?? []).map((t) => ({ where: `${name}: ${panel.title}`, expr: t.expr })),
    ),
  ),
];

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
      ]),
    );
  });
});
