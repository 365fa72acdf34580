import { GatewayConfigStore } from '@vantageedge/gateway/config/gateway-config-store';
import { describe, expect, it } from 'vitest';
import { summarizeProfile } from '../profile-summary.js';
import { originConfig, proxyConfig } from './nginx.js';
import { pairedBlocks } from './paired-blocks.js';
import { processCpuNs, processUsage } from './processes.js';
import {
  markdownTable,
  median,
  medianConfidenceInterval,
  orientedCouples,
  pairedVerdict,
  ratio,
  type ScenarioRow,
  scenarioRatios,
  summarize,
  summarizePaired,
  svgChart,
} from './report.js';
import { APIKEY_TWIN, BENCH_BROWSER_ORIGIN, POLICY_PARTS, SCENARIOS } from './scenarios.js';
import { type LoadResult, parseWrkOutput } from './wrk.js';

const load = (rps: number, p99: number, extra: Partial<LoadResult> = {}): LoadResult => ({
  rps,
  requests: rps * 5,
  latencyMs: { p50: p99 / 4, p90: p99 / 2, p99, p999: p99 * 2, max: p99 * 3, mean: p99 / 3 },
  errors: 0,
  non2xx: 0,
  ...extra,
});

describe('benchmark aggregation', () => {
  it('takes medians over runs and totals errors, so one bad run neither hides nor dominates', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    const summary = summarize(
      [load(1000, 4), load(5000, 1, { errors: 2 }), load(1200, 3, { non2xx: 7 })],
      [
        { cpuCores: 0.9, rssMiB: 80 },
        { cpuCores: 1, rssMiB: 95 },
        { cpuCores: 0.8, rssMiB: 90 },
      ],
    );
    expect(summary.rps).toBe(1200);
    expect(summary.p99Ms).toBe(3);
    expect(summary.errors).toBe(2);
    expect(summary.non2xx).toBe(7);
    expect(summary.usage).toEqual({ cpuCores: 0.9, rssMiB: 95 });
    expect(summary.cpuUsPerRequest).toBe(750); // 0.9 core ÷ 1,200 rps
  });

  it('reports the gateway ÷ nginx ratio with two decimals, n/a when nginx measured nothing', () => {
    expect(ratio(3_000, 10_000)).toBe(0.3);
    expect(ratio(1, 3)).toBe(0.33);
    expect(ratio(5, 0)).toBeNull();
  });

  it('renders a Markdown table row and an SVG bar per side for every scenario', () => {
    const row: ScenarioRow = {
      id: 'full',
      title: '3 full pipeline <&>',
      gateway: summarize([load(3000, 20)], [{ cpuCores: 1, rssMiB: 120 }]),
      nginx: summarize([load(10_000, 5)], [{ cpuCores: 0.5, rssMiB: 10 }]),
      rpsRatio: 0.3,
      p99Ratio: 4,
      cpuRatio: 0.15,
    };
    const table = markdownTable([row]);
    expect(table.split('\n')).toHaveLength(3);
    expect(table).toContain('| 3 full pipeline <&> | 3,000 | 10,000 | **0.3** |');
    const svg = svgChart([row, { ...row, id: 'public', title: '1 public' }], 'test machine');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(svg).toContain('3 full pipeline &lt;&amp;&gt;');
    // 2 scenarios × 2 sides × 2 panels (rps, p99) bars, plus the background and 2 legend swatches.
    expect(svg.match(/<rect /g)).toHaveLength(2 * 2 * 2 + 3);
  });
});

describe('ratios against nginx and against the bare Node proxy', () => {
  it('shows each scenario ÷ nginx and ÷ the floor, by rps and per CPU µs, in the row and the table', () => {
    const gateway = summarize([load(6_000, 10)], [{ cpuCores: 0.9, rssMiB: 120 }]); // 150 µs/req
    const nginx = summarize([load(30_000, 2)], [{ cpuCores: 0.6, rssMiB: 10 }]); // 20 µs/req
    const floor = summarize([load(8_000, 6)], [{ cpuCores: 0.96, rssMiB: 60 }]); // 120 µs/req
    const ratios = scenarioRatios(gateway, nginx, floor);
    expect(ratios).toEqual({
      rpsRatio: 0.2,
      p99Ratio: 5,
      cpuRatio: 0.13,
      floorRatio: 0.75,
      floorCpuRatio: 0.8,
    });
    const table = markdownTable([{ id: 'full', title: '3 full', gateway, nginx, ...ratios }]);
    expect(table.split('\n')[0]).toContain('| **gw ÷ nginx** | **gw ÷ floor** |');
    expect(table).toContain('| 3 full | 6,000 | 30,000 | **0.2** | **0.75** |');
    expect(table.trimEnd().endsWith('| 0.13 | 0.8 |')).toBe(true);
  });

  it('has no floor ratio when the floor was not measured', () => {
    const side = summarize([load(1_000, 1)], []);
    const none = summarize([], []);
    expect(scenarioRatios(side, side, none)).toMatchObject({ floorRatio: null, floorCpuRatio: null });
  });
});

describe('paired comparison', () => {
  it("reports the median pair's cost ratio, so a pair that a neighbour's load skewed does not decide it", () => {
    const summary = summarizePaired([
      { baseUsPerRequest: 60, variantUsPerRequest: 63 },
      { baseUsPerRequest: 90, variantUsPerRequest: 93 },
      { baseUsPerRequest: 50, variantUsPerRequest: 75 },
      { baseUsPerRequest: 0, variantUsPerRequest: 70 },
    ])!;
    expect(summary.pairs).toBe(3);
    expect(summary.costRatio).toBe(1.05);
    expect(summary.costRatioRange).toEqual([1.033, 1.5]);
    expect(summary.baseUsPerRequest).toBe(60);
    expect(summary.variantUsPerRequest).toBe(75);
  });

  it("takes a run one way round with the next the other way, so one process's own extra cost cancels", () => {
    // The pair's first process costs 4% more than its second, whatever it serves; the variant 3% more
    // than the base. Runs alternate: base on the first process, then on the second.
    const runs = Array.from({ length: 12 }, (_, i) => {
      const swapped = i % 2 === 1;
      const base = 100 * (swapped ? 1 : 1.04);
      const variant = 103 * (swapped ? 1.04 : 1);
      return { baseUsPerRequest: base, variantUsPerRequest: variant, processPair: i < 6 ? 0 : 1, swapped };
    });
    expect(orientedCouples(runs)).toHaveLength(6);
    const summary = summarizePaired(runs)!;
    expect(summary.costRatio).toBe(1.03);
    expect(summary.couples).toBe(6);
    expect(summary.orientationRatios).toEqual({ unswapped: 0.99, swapped: 1.071 });
    expect(summary.costRatioCi95).toEqual([1.03, 1.03]);
    // A couple never spans two pairs of processes, and runs without an orientation are taken one by one.
    expect(orientedCouples([runs[1]!, { ...runs[0]!, processPair: 1 }])).toEqual([]);
    expect(
      summarizePaired(
        runs.map(({ baseUsPerRequest, variantUsPerRequest }) => ({ baseUsPerRequest, variantUsPerRequest })),
      )!.couples,
    ).toBe(0);
  });

  it('starts as many pairs of processes as it says, each with whole couples of runs', () => {
    // Fewer couples than BENCH_PAIR_PROCESSES: one pair per couple, not pairs with no run.
    expect(pairedBlocks(2, 2)).toEqual([2]);
    expect(pairedBlocks(4, 3)).toEqual([2, 2]);
    expect(pairedBlocks(1, 3)).toEqual([2]);
    // Enough couples: shared as evenly as whole couples allow, an odd count rounded up to a couple.
    expect(pairedBlocks(12, 2)).toEqual([6, 6]);
    expect(pairedBlocks(40, 3)).toEqual([12, 14, 14]);
    expect(pairedBlocks(5, 2)).toEqual([2, 4]);
    expect(pairedBlocks(24, 4)).toEqual([6, 6, 6, 6]);
  });

  it('has nothing to say without a pair whose CPU was measured', () => {
    expect(summarizePaired([{ baseUsPerRequest: 0, variantUsPerRequest: 0 }])).toBeNull();
  });

  it('gives the median ratio a 95% interval from the pairs’ order statistics, robust to a few wild pairs', () => {
    // 30 pairs: the interval runs from the 10th to the 21st smallest ratio.
    const ratios = Array.from({ length: 30 }, (_, i) => 1 + i / 100);
    ratios[29] = 3; // one pair a neighbour disturbed
    const summary = summarizePaired(
      ratios.map((r) => ({ baseUsPerRequest: 100, variantUsPerRequest: 100 * r })),
    )!;
    expect(summary.costRatioCi95).toEqual([1.09, 1.2]);
    expect(medianConfidenceInterval([1, 2, 3, 4, 5, 6])).toEqual([1, 6]);
    expect(medianConfidenceInterval([1, 2, 3, 4, 5])).toBeNull(); // 5 pairs cannot give 95%
  });

  it('says a goal is met only when the whole interval is under it, missed when all of it is over', () => {
    const withInterval = (low: number, high: number) => ({
      pairs: 30,
      baseUsPerRequest: 70,
      variantUsPerRequest: 72,
      costRatio: (low + high) / 2,
      couples: 15,
      orientationRatios: null,
      costRatioCi95: [low, high] as [number, number],
      costRatioRange: [0.8, 1.3] as [number, number],
    });
    expect(pairedVerdict(withInterval(0.99, 1.04), 1.05)).toBe('met');
    expect(pairedVerdict(withInterval(1.02, 1.07), 1.05)).toBe('undecided');
    expect(pairedVerdict(withInterval(1.06, 1.1), 1.05)).toBe('missed');
    expect(pairedVerdict({ ...withInterval(1, 1), costRatioCi95: null }, 1.05)).toBe('undecided');
  });
});

describe('wrk summary', () => {
  it('parses the JSON line of wrk-report.lua into rps, ms percentiles, errors and non-2xx', () => {
    const stdout = `Running 2s test @ http://127.0.0.1:1/\n  1 threads and 50 connections\n
WRK_JSON {"requests":20000,"duration_us":2000000,"bytes":1,"errors":{"connect":1,"read":2,"write":0,"status":5,"timeout":3},"latency_us":{"mean":512.5,"max":9000,"p50":400,"p90":800,"p99":1500,"p999":4000}}\n`;
    const result = parseWrkOutput(stdout);
    expect(result.rps).toBe(10_000);
    expect(result.latencyMs).toEqual({ p50: 0.4, p90: 0.8, p99: 1.5, p999: 4, max: 9, mean: 0.513 });
    expect(result.errors).toBe(6);
    expect(result.non2xx).toBe(5);
    expect(() => parseWrkOutput('unable to connect')).toThrow(/no summary/);
  });
});

describe('scenarios', () => {
  const ctx = { originUrl: 'http://127.0.0.1:9', jwt: 'x.y.z' };
  const stubUpstreams = () => ({ acquire: () => undefined, close: async () => {} });

  it('gives the gateway valid snapshots whose route matches the request each scenario sends', () => {
    for (const scenario of SCENARIOS) {
      const store = new GatewayConfigStore({ baseDomains: ['localhost'], createUpstreamSet: stubUpstreams });
      for (const snapshot of scenario.snapshots(ctx)) expect(store.apply(snapshot)).toBe(true);
      const tenant = store.resolveHost(scenario.host);
      expect(tenant, scenario.id).toBeDefined();
      expect(tenant!.router.match('GET', scenario.path), scenario.id).toBeDefined();
    }
  });

  it('serves the paired scenarios from different tenants, so one gateway process can hold both', () => {
    const [apikey, policies] = ['apikey', 'policies'].map((id) => SCENARIOS.find((s) => s.id === id)!);
    const paired = [apikey!, policies!, APIKEY_TWIN];
    const store = new GatewayConfigStore({ baseDomains: ['localhost'], createUpstreamSet: stubUpstreams });
    for (const snapshot of paired.flatMap((s) => s.snapshots(ctx))) expect(store.apply(snapshot)).toBe(true);
    const routes = paired.map((s) => store.resolveHost(s.host)?.router.match('GET', s.path));
    expect(routes.every((r) => r !== undefined)).toBe(true);
    expect(new Set(routes).size).toBe(3);
    // The control does the same work as its base: the same route, on another tenant.
    const routeOf = (s: typeof apikey) => s!.snapshots(ctx)[0]!.routes[0]!;
    const sameExceptIds = (s: typeof apikey) => ({ ...routeOf(s), id: '', origin_id: '' });
    expect(sameExceptIds(APIKEY_TWIN)).toEqual(sameExceptIds(apikey));
    expect(APIKEY_TWIN.headers(ctx)).toEqual(apikey!.headers(ctx));
  });

  it('runs the policies scenario as the API-key scenario plus CORS, IP rules and two header transforms', () => {
    const [apikey, policies] = ['apikey', 'policies'].map((id) => SCENARIOS.find((s) => s.id === id)!);
    const routeOf = (scenario: typeof apikey) => scenario!.snapshots(ctx)[0]!.routes[0]!;
    const plain = routeOf(apikey);
    const withPolicies = routeOf(policies);
    expect(withPolicies.auth_mode).toBe(plain.auth_mode);
    expect(withPolicies.path_pattern).toBe(plain.path_pattern);
    expect(plain.cors).toBeNull();
    expect(withPolicies.cors?.allow_origins).toEqual(['https://*.bench.example']);
    expect(withPolicies.ip_rules?.allow).toContain('127.0.0.0/8');
    const transforms = [withPolicies.request_headers, withPolicies.response_headers].flatMap((t) => [
      ...Object.keys(t?.set ?? {}),
      ...Object.keys(t?.add ?? {}),
      ...(t?.remove ?? []),
    ]);
    expect(transforms).toHaveLength(2);
    // The request is a browser's: its Origin is one the CORS policy allows, so CORS does its work.
    expect(policies!.headers(ctx)['origin']).toBe(BENCH_BROWSER_ORIGIN);
    expect(policies!.headers(ctx)['x-api-key']).toBe(apikey!.headers(ctx)['x-api-key']);
  });

  it('takes the policies scenario apart: one policy per part, on the policies tenant, loadable', () => {
    const policies = SCENARIOS.find((s) => s.id === 'policies')!;
    const POLICY_FIELDS = ['cors', 'ip_rules', 'request_headers', 'response_headers'] as const;
    const on = POLICY_PARTS.map((part) => {
      const store = new GatewayConfigStore({ baseDomains: ['localhost'], createUpstreamSet: stubUpstreams });
      for (const snapshot of part.snapshots(ctx)) expect(store.apply(snapshot)).toBe(true);
      expect(store.resolveHost(part.host)?.router.match('GET', part.path), part.id).toBeDefined();
      expect(part.host).toBe(policies.host);
      const route = part.snapshots(ctx)[0]!.routes[0]!;
      return [part.id, POLICY_FIELDS.filter((field) => route[field] !== null), 'origin' in part.headers(ctx)];
    });
    expect(on).toEqual([
      ['part-origin-only', [], true],
      ['part-cors', ['cors'], true],
      ['part-cors-lean', ['cors'], true],
      ['part-ip-rules', ['ip_rules'], false],
      ['part-request-headers', ['request_headers'], false],
      ['part-response-headers', ['response_headers'], false],
    ]);
    const lean = POLICY_PARTS.find((p) => p.id === 'part-cors-lean')!.snapshots(ctx)[0]!.routes[0]!.cors!;
    expect([lean.allow_credentials, lean.expose_headers]).toEqual([false, []]);
  });

  it('loads 1,000 tenants × 20 routes for the scale scenario', () => {
    const scale = SCENARIOS.find((s) => s.id === 'scale')!;
    const snapshots = scale.snapshots(ctx);
    expect(snapshots).toHaveLength(1000);
    expect(snapshots.every((s) => s.routes.length === 20)).toBe(true);
  });

  it('spreads the cache scenarios over more URLs than connections, so HITs from Redis are not coalesced', () => {
    for (const id of ['cache-l1', 'cache-redis']) {
      expect(SCENARIOS.find((s) => s.id === id)!.pathVariants, id).toBeGreaterThan(50);
    }
    expect(SCENARIOS.find((s) => s.id === 'public')!.pathVariants).toBeUndefined();
  });

  it('configures the full pipeline with an exact limit and the access log, the fast variant with fast', () => {
    const limit = (id: string) =>
      SCENARIOS.find((s) => s.id === id)!.snapshots(ctx)[0]!.routes[0]!.rate_limit;
    expect(limit('full')?.accuracy).toBe('exact');
    expect(limit('full-fast')?.accuracy).toBe('fast');
    expect(SCENARIOS.find((s) => s.id === 'full')!.accessLog).toBe(1);
  });
});

describe('nginx configs', () => {
  it('proxies with upstream keep-alive on one worker, and caches only in the cache variant', () => {
    const plain = proxyConfig('/tmp/p', 8080, 9090, { cache: false });
    expect(plain).toContain('worker_processes 1;');
    expect(plain).toContain('keepalive 64;');
    expect(plain).toContain('proxy_set_header Connection "";');
    expect(plain).not.toContain('proxy_cache bench;');
    expect(proxyConfig('/tmp/p', 8080, 9090, { cache: true })).toContain('proxy_cache bench;');
    expect(originConfig('/tmp/ve-bench-unit-origin', 9090)).toContain('listen 127.0.0.1:9090');
  });
});

describe('profile summary', () => {
  it('ranks functions by self time and leaves idle time out of the percentages', () => {
    const frame = (functionName: string, url = '') => ({ functionName, url, lineNumber: 0 });
    const text = summarizeProfile({
      nodes: [
        { id: 1, callFrame: frame('(idle)') },
        { id: 2, callFrame: frame('writev') },
        { id: 3, callFrame: frame('parseHeaders', 'file:///x/node_modules/undici/lib/core/util.js') },
      ],
      startTime: 0,
      endTime: 10,
      samples: [1, 1, 2, 3, 2, 2],
      timeDeltas: [1000, 1000, 1000, 1000, 1000, 1000],
    });
    expect(text).toContain('0.0 s busy');
    expect(text).toContain('| 75.0% | 3 | `writev` |');
    expect(text).toContain('| 25.0% | 1 | `npm: undici` |');
    expect(text).not.toContain('`(idle)`');
  });
});

describe('h2load summary', () => {
  it('reads requests, failures, rps and request times from its output', async () => {
    const { parseH2load } = await import('./h2load.js');
    const output = `finished in 2.01s, 24876.12 req/s, 3.05MB/s
requests: 50000 total, 50000 started, 50000 done, 49990 succeeded, 10 failed, 0 errored, 0 timeout
status codes: 49990 2xx, 0 3xx, 0 4xx, 10 5xx
                     min         max         mean         sd        +/- sd
time for request:      112us     25.40ms      3.21ms      1.02ms    71.23%
`;
    expect(parseH2load(output, 'h2')).toEqual({
      protocol: 'h2',
      requests: 50000,
      succeeded: 49990,
      failed: 10,
      rps: 24876.12,
      meanMs: 3.21,
      maxMs: 25.4,
    });
  });
});

describe('process CPU time', () => {
  it('counts every thread of a process in ns, agreeing with the kernel’s tick count', () => {
    const before = processCpuNs(process.pid);
    const ticksBefore = processUsage(process.pid)!.cpuSeconds;
    const start = process.cpuUsage();
    let spins = 0;
    while (process.cpuUsage(start).user < 100_000) spins++; // 100 ms of CPU on this thread
    const usedNs = processCpuNs(process.pid) - before;
    expect(spins).toBeGreaterThan(0);
    expect(usedNs).toBeGreaterThanOrEqual(90e6);
    expect(usedNs / 1e9).toBeCloseTo(processUsage(process.pid)!.cpuSeconds - ticksBefore, 0);
  });
});
