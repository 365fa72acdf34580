import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { LabelBudget } from '../observability/label-budget.js';
import { TargetMetrics } from './metrics.js';

const TENANT = 't1';
const ORIGIN = 'o1';

const targetMetrics = (registry: Registry, budget: LabelBudget, id: string) =>
  new TargetMetrics(
    registry,
    { tenant: TENANT, origin: ORIGIN, id, label: id },
    { picks: 0, inFlight: 0 },
    budget,
  );

/** The values of a family by its `label` label (`target` by default). */
async function byTarget(registry: Registry, name: string, label = 'target'): Promise<Record<string, number>> {
  const values = (await registry.getSingleMetric(name)?.get())?.values ?? [];
  return Object.fromEntries(values.map((value) => [String(value.labels[label]), value.value]));
}
const foldedByOrigin = (registry: Registry) =>
  byTarget(registry, 'vantageedge_upstream_metrics_folded_targets', 'origin');

describe('target series past the label budget', () => {
  it('adds up the folded targets of an origin in target="other": healthy ones, the most open circuit, picks', async () => {
    const registry = new Registry();
    const budget = new LabelBudget({ maxLabels: 1, tenantShare: 1 });
    const [a, b, c] = ['http://a', 'http://b', 'http://c'].map((id) => targetMetrics(registry, budget, id));
    b!.healthChanged(false, 'passive');
    c!.circuitChanged('open', 'consecutive_failures');
    c!.load.picks = 3;
    b!.load.picks = 2;

    expect(await byTarget(registry, 'vantageedge_upstream_target_healthy')).toEqual({
      'http://a': 1,
      other: 1,
    });
    expect(await byTarget(registry, 'vantageedge_upstream_circuit_state')).toEqual({
      'http://a': 0,
      other: 2,
    });
    expect(await byTarget(registry, 'vantageedge_upstream_picks_total')).toEqual({ 'http://a': 0, other: 5 });
    expect(await foldedByOrigin(registry)).toEqual({ [ORIGIN]: 2 });

    c!.close();
    expect(await byTarget(registry, 'vantageedge_upstream_circuit_state')).toEqual({
      'http://a': 0,
      other: 0,
    });
    expect(await foldedByOrigin(registry)).toEqual({ [ORIGIN]: 1 });
    b!.close();
    expect(await byTarget(registry, 'vantageedge_upstream_target_healthy')).toEqual({ 'http://a': 1 });
    a!.close();
    expect(await byTarget(registry, 'vantageedge_upstream_target_healthy')).toEqual({});
    // The closed target's label is free again.
    expect(targetMetrics(registry, budget, 'http://d').labels.target).toBe('http://d');
  });

  it('keeps a target’s label and counts it once while the set it is in replaces another', async () => {
    const registry = new Registry();
    const budget = new LabelBudget({ maxLabels: 1, tenantShare: 1 });
    const old = targetMetrics(registry, budget, 'http://a');
    old.healthChanged(false, 'passive');
    const replacement = targetMetrics(registry, budget, 'http://a');
    expect(replacement.labels.target).toBe('http://a');
    expect(await byTarget(registry, 'vantageedge_upstream_target_healthy')).toEqual({ 'http://a': 1 });

    old.close();
    // Still held by the replacement: another target folds.
    expect(targetMetrics(registry, budget, 'http://b').labels.target).toBe('other');
    expect(await byTarget(registry, 'vantageedge_upstream_target_healthy')).toEqual({
      'http://a': 1,
      other: 1,
    });
  });
});
