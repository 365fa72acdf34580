import type { LoadResult } from './wrk.js';

/** Aggregation and rendering of benchmark results: medians, ratios, a Markdown table, an SVG chart. */

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export interface Usage {
  /** CPU used by the process during the run, in cores (1.0 = one core fully busy). */
  cpuCores: number;
  rssMiB: number;
}

export interface SideSummary {
  runs: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  errors: number;
  non2xx: number;
  usage: Usage | null;
  /** CPU time the process spent per request (µs): robust to other load on the machine. */
  cpuUsPerRequest: number | null;
}

/** Median of each figure over the runs; errors and non-2xx are totals (any of them is a finding). */
export function summarize(runs: readonly LoadResult[], usage: readonly Usage[]): SideSummary {
  const rps = median(runs.map((r) => r.rps));
  const cpuCores = usage.length === 0 ? Number.NaN : median(usage.map((u) => u.cpuCores));
  return {
    cpuUsPerRequest: rps > 0 && Number.isFinite(cpuCores) ? round((cpuCores * 1e6) / rps, 1) : null,
    runs: runs.length,
    rps: Math.round(median(runs.map((r) => r.rps))),
    p50Ms: median(runs.map((r) => r.latencyMs.p50)),
    p99Ms: median(runs.map((r) => r.latencyMs.p99)),
    p999Ms: median(runs.map((r) => r.latencyMs.p999)),
    errors: runs.reduce((sum, r) => sum + r.errors, 0),
    non2xx: runs.reduce((sum, r) => sum + r.non2xx, 0),
    usage:
      usage.length === 0
        ? null
        : {
            cpuCores: round(median(usage.map((u) => u.cpuCores)), 2),
            rssMiB: round(Math.max(...usage.map((u) => u.rssMiB)), 1),
          },
  };
}

export function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

export function ratio(a: number, b: number): number | null {
  return b > 0 && Number.isFinite(a) ? round(a / b, 2) : null;
}

export interface ScenarioRow {
  id: string;
  title: string;
  gateway: SideSummary;
  nginx: SideSummary;
  /** gateway rps ÷ nginx rps. */
  rpsRatio: number | null;
  /** gateway p99 ÷ nginx p99. */
  p99Ratio: number | null;
  /** nginx CPU µs/request ÷ gateway CPU µs/request: the rps ratio if both had a whole core to themselves. */
  cpuRatio: number | null;
  /** gateway rps ÷ the bare Node proxy's rps (the floor, measured once per run on the same core). */
  floorRatio?: number | null;
  /** floor CPU µs/request ÷ gateway CPU µs/request: what the gateway's features cost over Node's own. */
  floorCpuRatio?: number | null;
  /** Lines the gateway wrote to its log during the scenario (the access log when it is on). */
  gatewayLogLines?: number;
}

const fmt = (n: number) => (Number.isFinite(n) ? n.toLocaleString('en-US') : 'n/a');
const ms = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : 'n/a');

export function markdownTable(rows: readonly ScenarioRow[]): string {
  const lines = [
    '| scenario | gateway rps | nginx rps | **gw ÷ nginx** | **gw ÷ floor** | gw p50 / p99 / p99.9 ms | nginx p50 / p99 / p99.9 ms | gw errors / non-2xx | gw CPU (cores) | gw RSS MiB | CPU µs/req gw / nginx | per-CPU ÷ nginx | per-CPU ÷ floor |',
    '|---|---:|---:|---:|---:|---|---|---:|---:|---:|---|---:|---:|',
  ];
  for (const row of rows) {
    const g = row.gateway;
    const n = row.nginx;
    lines.push(
      `| ${row.title} | ${fmt(g.rps)} | ${fmt(n.rps)} | **${row.rpsRatio ?? 'n/a'}** | **${row.floorRatio ?? 'n/a'}** | ${ms(g.p50Ms)} / ${ms(g.p99Ms)} / ${ms(g.p999Ms)} | ${ms(n.p50Ms)} / ${ms(n.p99Ms)} / ${ms(n.p999Ms)} | ${g.errors} / ${g.non2xx} | ${g.usage?.cpuCores ?? 'n/a'} | ${g.usage?.rssMiB ?? 'n/a'} | ${g.cpuUsPerRequest ?? 'n/a'} / ${n.cpuUsPerRequest ?? 'n/a'} | ${row.cpuRatio ?? 'n/a'} | ${row.floorCpuRatio ?? 'n/a'} |`,
    );
  }
  return lines.join('\n');
}

/** The scenario's ratios against nginx (same scenario) and against the bare Node proxy (the floor). */
export function scenarioRatios(
  gateway: SideSummary,
  nginx: SideSummary,
  floor: SideSummary,
): Pick<ScenarioRow, 'rpsRatio' | 'p99Ratio' | 'cpuRatio' | 'floorRatio' | 'floorCpuRatio'> {
  const perCpu = (reference: SideSummary) =>
    gateway.cpuUsPerRequest && reference.cpuUsPerRequest
      ? ratio(reference.cpuUsPerRequest, gateway.cpuUsPerRequest)
      : null;
  return {
    rpsRatio: ratio(gateway.rps, nginx.rps),
    p99Ratio: ratio(gateway.p99Ms, nginx.p99Ms),
    cpuRatio: perCpu(nginx),
    floorRatio: ratio(gateway.rps, floor.rps),
    floorCpuRatio: perCpu(floor),
  };
}

/** One run of the paired comparison: CPU µs per request of each side. */
export interface PairedRun {
  baseUsPerRequest: number;
  variantUsPerRequest: number;
  /** Which pair of gateway processes ran it (runs are shared between BENCH_PAIR_PROCESSES pairs). */
  processPair?: number | undefined;
  /** The base ran on the pair's second process, the variant on its first (every other run). */
  swapped?: boolean | undefined;
}

export interface PairedSummary {
  pairs: number;
  baseUsPerRequest: number;
  variantUsPerRequest: number;
  /**
   * Median variant ÷ base CPU per request (1.05 = the variant costs 5% more): over couples of runs when
   * the runs say their orientation (see orientedCouples), else over runs.
   */
  costRatio: number;
  /** Couples of runs in opposite orientations the ratio is the median of (0: it is over runs). */
  couples: number;
  /**
   * The median ratio of the runs in each orientation: how far apart they are is how much one process of
   * a pair cost more than the other (squared), which the couples cancel.
   */
  orientationRatios: { unswapped: number; swapped: number } | null;
  /**
   * 95% confidence interval of that median, distribution-free (order statistics of the pairs' ratios,
   * so a few pairs a neighbour disturbed do not widen it much); null below 6 pairs.
   */
  costRatioCi95: [number, number] | null;
  /** The smallest and largest run's ratio: how much the machine moved during the comparison. */
  costRatioRange: [number, number];
}

/**
 * Couples of consecutive runs on the same pair of processes in opposite orientations, each giving
 * √(ratio unswapped × ratio swapped). Two processes serving the same code on the same core can differ by
 * a few percent for a whole run of pairs (which started first, its memory layout, its JIT); a factor k
 * on one process shows as r × k one way round and r ÷ k the other, so a couple's geometric mean is
 * free of it, where a median over runs sits wherever the two clusters happen to meet.
 */
export function orientedCouples(runs: readonly PairedRun[]): number[] {
  const couples: number[] = [];
  let waiting: PairedRun | undefined;
  for (const run of runs) {
    if (run.swapped === undefined || run.processPair === undefined) return [];
    if (waiting !== undefined && waiting.processPair === run.processPair && waiting.swapped !== run.swapped) {
      couples.push(Math.sqrt(runRatio(waiting) * runRatio(run)));
      waiting = undefined;
    } else {
      waiting = run;
    }
  }
  return couples;
}

function runRatio(run: PairedRun): number {
  return run.variantUsPerRequest / run.baseUsPerRequest;
}

/**
 * Two scenarios served by one gateway process in alternating runs: each pair's ratio compares runs a
 * second apart on the same process, so a neighbour's load that moves both cancels out, which a
 * comparison of two scenarios measured minutes apart (each with its own process) does not.
 */
export function summarizePaired(runs: readonly PairedRun[]): PairedSummary | null {
  const usable = runs.filter((r) => r.baseUsPerRequest > 0 && r.variantUsPerRequest > 0);
  if (usable.length === 0) return null;
  const runRatios = usable.map(runRatio);
  const couples = orientedCouples(usable);
  const ratios = couples.length > 0 ? couples : runRatios;
  const ci = medianConfidenceInterval(ratios);
  const inOrientation = (swapped: boolean) => usable.filter((r) => r.swapped === swapped).map(runRatio);
  const [unswapped, swapped] = [inOrientation(false), inOrientation(true)];
  return {
    pairs: usable.length,
    baseUsPerRequest: round(median(usable.map((r) => r.baseUsPerRequest)), 1),
    variantUsPerRequest: round(median(usable.map((r) => r.variantUsPerRequest)), 1),
    costRatio: round(median(ratios), 3),
    couples: couples.length,
    orientationRatios:
      unswapped.length > 0 && swapped.length > 0
        ? { unswapped: round(median(unswapped), 3), swapped: round(median(swapped), 3) }
        : null,
    costRatioCi95: ci === null ? null : [round(ci[0], 3), round(ci[1], 3)],
    costRatioRange: [round(Math.min(...runRatios), 3), round(Math.max(...runRatios), 3)],
  };
}

/**
 * The interval [x(k), x(n+1-k)] of the sorted values that holds the median with at least 95%
 * probability: k is the largest rank with P(Binomial(n, ½) < k) ≤ 2.5%. Null when n < 6 (no such k).
 */
export function medianConfidenceInterval(values: readonly number[]): [number, number] | null {
  const n = values.length;
  const sorted = [...values].sort((a, b) => a - b);
  let below = 0; // P(Binomial(n, ½) ≤ k − 1), growing with k
  let k = 0;
  for (let j = 0; j < n; j++) {
    below += binomialHalf(n, j);
    if (below > 0.025) break;
    k = j + 1;
  }
  return k === 0 ? null : [sorted[k - 1]!, sorted[n - k]!];
}

/** P(Binomial(n, ½) = j), through logarithms so that large n does not overflow. */
function binomialHalf(n: number, j: number): number {
  let logChoose = 0;
  for (let i = 1; i <= j; i++) logChoose += Math.log(n - j + i) - Math.log(i);
  return Math.exp(logChoose - n * Math.LN2);
}

/**
 * A paired comparison against its goal (the variant may cost at most `maxRatio` × the base): `met`
 * when the whole confidence interval is at or under it, `missed` when the whole interval is above it,
 * else `undecided` (the machine was too noisy to tell; run more pairs).
 */
export function pairedVerdict(summary: PairedSummary, maxRatio: number): 'met' | 'missed' | 'undecided' {
  const ci = summary.costRatioCi95;
  if (ci === null) return 'undecided';
  if (ci[1] <= maxRatio) return 'met';
  if (ci[0] > maxRatio) return 'missed';
  return 'undecided';
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Two grouped bar charts side by side: rps and p99 per scenario, gateway vs nginx. Hand-written SVG. */
export function svgChart(rows: readonly ScenarioRow[], subtitle: string): string {
  const width = 1000;
  const panelHeight = 300;
  const top = 60;
  const left = 70;
  const panelWidth = (width - left * 2 - 40) / 2;
  const labelSpace = 150;
  const height = top + panelHeight + labelSpace + 40;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="16" font-weight="bold">VantageEdge gateway vs nginx (one core each)</text>`,
    `<text x="${width / 2}" y="40" text-anchor="middle" fill="#555">${escapeXml(subtitle)}</text>`,
  ];
  const panels: Array<{ title: string; value: (s: SideSummary) => number; x0: number }> = [
    { title: 'requests/s (higher is better)', value: (s) => s.rps, x0: left },
    { title: 'p99 latency ms (lower is better)', value: (s) => s.p99Ms, x0: left + panelWidth + 80 },
  ];
  for (const panel of panels) {
    const values = rows
      .flatMap((r) => [panel.value(r.gateway), panel.value(r.nginx)])
      .filter(Number.isFinite);
    const max = Math.max(1e-9, ...values) * 1.1;
    const y = (v: number) => top + panelHeight - (Number.isFinite(v) ? (v / max) * panelHeight : 0);
    parts.push(
      `<text x="${panel.x0 + panelWidth / 2}" y="${top - 6}" text-anchor="middle" font-weight="bold">${panel.title}</text>`,
      `<line x1="${panel.x0}" y1="${top + panelHeight}" x2="${panel.x0 + panelWidth}" y2="${top + panelHeight}" stroke="#333"/>`,
      `<line x1="${panel.x0}" y1="${top}" x2="${panel.x0}" y2="${top + panelHeight}" stroke="#333"/>`,
    );
    for (let t = 0; t <= 4; t++) {
      const v = (max / 1.1) * (t / 4);
      parts.push(
        `<text x="${panel.x0 - 4}" y="${y(v) + 4}" text-anchor="end" fill="#555">${v >= 100 ? Math.round(v).toLocaleString('en-US') : v.toFixed(2)}</text>`,
        `<line x1="${panel.x0}" y1="${y(v)}" x2="${panel.x0 + panelWidth}" y2="${y(v)}" stroke="#eee"/>`,
      );
    }
    const group = panelWidth / Math.max(1, rows.length);
    const bar = Math.min(18, group * 0.35);
    rows.forEach((row, i) => {
      const gx = panel.x0 + i * group + group / 2;
      for (const [j, side, color] of [
        [0, row.gateway, '#2b6cb0'],
        [1, row.nginx, '#dd6b20'],
      ] as const) {
        const v = panel.value(side);
        const x = gx - bar + j * bar;
        parts.push(
          `<rect x="${x.toFixed(1)}" y="${y(v).toFixed(1)}" width="${bar.toFixed(1)}" height="${(top + panelHeight - y(v)).toFixed(1)}" fill="${color}"><title>${escapeXml(row.title)}: ${v}</title></rect>`,
        );
      }
      const ly = top + panelHeight + 12;
      parts.push(
        `<text transform="translate(${gx.toFixed(1)},${ly}) rotate(45)" fill="#333">${escapeXml(row.title.slice(0, 28))}</text>`,
      );
    });
  }
  const ly = height - 16;
  parts.push(
    `<rect x="${left}" y="${ly - 10}" width="12" height="12" fill="#2b6cb0"/><text x="${left + 18}" y="${ly}">gateway</text>`,
    `<rect x="${left + 90}" y="${ly - 10}" width="12" height="12" fill="#dd6b20"/><text x="${left + 108}" y="${ly}">nginx (reverse proxy / proxy_cache, no auth or limits)</text>`,
    '</svg>',
  );
  return `${parts.join('\n')}\n`;
}

/** One-line progress display, rewritten in place on a TTY. */
export function progress(done: number, total: number, label: string, startedAt: number): void {
  const width = 30;
  const filled = Math.min(width, Math.max(0, Math.round((done / Math.max(1, total)) * width)));
  const elapsed = Math.round((Date.now() - startedAt) / 1000);
  const line = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} ${elapsed}s ${label}`;
  if (process.stderr.isTTY) process.stderr.write(`\r\x1b[2K${line}`);
  else process.stderr.write(`${line}\n`);
}
