import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

/** The operations pack's Prometheus rules and Grafana dashboards, and every query they run. */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const OBSERVABILITY = path.join(ROOT, 'infra/observability');

export interface Rule {
  record?: string;
  alert?: string;
  expr: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface RuleFile {
  groups: Array<{ rules: Rule[] }>;
}
export const rules: Rule[] = readdirSync(path.join(OBSERVABILITY, 'prometheus/rules'))
  .map((name) => parse(readFileSync(path.join(OBSERVABILITY, 'prometheus/rules', name), 'utf8')) as RuleFile)
  .flatMap((file) => file.groups.flatMap((group) => group.rules));

export interface Panel {
  title: string;
  type: string;
  targets?: Array<{ expr: string }>;
}
interface Dashboard {
  uid: string;
  panels: Panel[];
  templating?: { list: Array<{ name: string; query?: string | { query: string } }> };
}
export const dashboards = readdirSync(path.join(OBSERVABILITY, 'grafana/dashboards')).map((name) => ({
  name,
  json: JSON.parse(readFileSync(path.join(OBSERVABILITY, 'grafana/dashboards', name), 'utf8')) as Dashboard,
}));

/** Every query of a rule, a dashboard panel or a dashboard variable, with where it is. */
export const queries: Array<{ where: string; expr: string }> = [
  ...rules.map((rule) => ({ where: `rule ${rule.record ?? rule.alert}`, expr: rule.expr })),
  ...dashboards.flatMap(({ name, json }) => [
    ...json.panels.flatMap((panel) =>
      (panel.targets ?? []).map((t) => ({ where: `${name}: ${panel.title}`, expr: t.expr })),
    ),
    ...(json.templating?.list ?? []).flatMap((variable) => {
      const query = typeof variable.query === 'string' ? variable.query : variable.query?.query;
      return query ? [{ where: `${name}: variable ${variable.name}`, expr: query }] : [];
    }),
  ]),
];

/** The product metrics a query reads (histogram series by their family's name). */
export function metricsOf(expr: string): string[] {
  return [...expr.matchAll(/(?<![:\w])vantageedge_[a-z0-9_]+(?![\w:])/g)].map(([name]) => name);
}

/** The label names a query groups, joins or filters by, or reads the values of. */
export function labelsOf(expr: string): Set<string> {
  const labels = new Set<string>();
  for (const [, list] of expr.matchAll(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g))
    for (const name of (list ?? '').split(',')) if (name.trim() !== '') labels.add(name.trim());
  for (const [, matchers] of expr.matchAll(/\{([^}]*)\}/g))
    for (const [, name] of (matchers ?? '').matchAll(/([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)/g))
      labels.add(name ?? '');
  for (const [, name] of expr.matchAll(/label_values\([^,]*,\s*(\w+)\s*\)/g)) labels.add(name ?? '');
  return labels;
}
