import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TEST_INFRA, uniqueSuffix } from '@vantageedge/shared/testing/infrastructure';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * The harness end to end on a tiny budget (1 s runs): real nginx origin and proxies, the gateway under
 * test as its own process with its Redis, wrk. Proves a user of `make bench` gets a JSON report with a
 * ratio per scenario, the fixed-rate comparison, an SVG and the Markdown table — with every request
 * answered 2xx (auth, cache HIT from Redis) on both sides.
 */
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outDir = mkdtempSync(path.join(os.tmpdir(), 've-bench-e2e-'));
afterAll(() => rmSync(outDir, { recursive: true, force: true }));

interface Report {
  cpu_plan: { pinned: boolean; note: string };
  direct: { rps: number };
  node_floor: { rpsRatio: number | null; node: { rps: number; non2xx: number; errors: number } };
  scenarios: Array<{
    id: string;
    rpsRatio: number | null;
    gateway: { rps: number; errors: number; non2xx: number; usage: { rssMiB: number } | null };
    nginx: { rps: number; errors: number; non2xx: number };
  }>;
  fixed_rate: Array<{ scenario: string; gateway_added: { p50Ms: number; p99Ms: number } }>;
  versions: { node: string; nginx: string; wrk: string };
  http2: {
    h2: { rps: number; failed: number };
    h1: { rps: number; failed: number };
    rpsRatio: number;
  } | null;
  floor_ratios: Record<string, number | null>;
  paired: Array<{
    base: string;
    variant: string;
    process_pairs: number;
    runs: Array<{
      baseUsPerRequest: number;
      variantUsPerRequest: number;
      processPair: number;
      swapped: boolean;
    }>;
    goal: { max_ratio: number; verdict: string } | null;
  }>;
}

describe('make bench harness', () => {
  it('measures the gateway next to nginx and writes JSON, SVG and a table with the ratios', async () => {
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(
        process.execPath,
        ['--import', 'tsx', path.join(repo, 'bench/run.ts')],
        {
          cwd: repo,
          env: {
            ...process.env,
            BENCH_QUICK: '1',
            BENCH_SECONDS: '1',
            // No warm-ups: they only steady the figures, which this test does not judge; every measured
            // run then starts on cold processes and must still be all 2xx.
            BENCH_WARMUP_SECONDS: '0',
            BENCH_CONNECTIONS: '10',
            BENCH_SCENARIOS: 'public,apikey,cache-redis,policies',
            BENCH_PAIRS: '2',
            BENCH_PAIR_SECONDS: '1',
            BENCH_PAIR_PROCESSES: '2',
            BENCH_H2_REQUESTS: '2000',
            BENCH_OUT_DIR: outDir,
            REDIS_URL: TEST_INFRA.redisUrl,
            BENCH_REDIS_PREFIX: `ve-test-bench-${uniqueSuffix()}:`,
          },
          maxBuffer: 1 << 22,
        },
        (error, out, err) => (error ? reject(new Error(`${error.message}\n${err}`)) : resolve(out)),
      );
    });

    const files = readdirSync(outDir);
    const jsonFile = files.find((f) => f.endsWith('.json'));
    expect(files.some((f) => f.endsWith('.svg'))).toBe(true);
    const report = JSON.parse(readFileSync(path.join(outDir, jsonFile!), 'utf8')) as Report;
    expect(report.scenarios.map((s) => s.id)).toEqual(['public', 'apikey', 'cache-redis', 'policies']);
    // The paired comparison: the control, then the policies against API-key auth and against API-key
    // auth with the same request, each on a fresh pair of gateway processes, with CPU per request
    // measured on both sides. Two runs are one couple, so one pair of processes runs them, whatever
    // BENCH_PAIR_PROCESSES asks, and the report says so.
    expect(report.paired.map((p) => `${p.variant}/${p.base}`)).toEqual([
      'apikey-twin/apikey',
      'policies/apikey',
      'policies/apikey-browser',
    ]);
    for (const pair of report.paired) {
      expect(pair.process_pairs).toBe(1);
      expect(pair.runs.map((run) => [run.processPair, run.swapped])).toEqual([
        [0, false],
        [0, true],
      ]);
      for (const run of pair.runs) {
        expect(run.baseUsPerRequest).toBeGreaterThan(0);
        expect(run.variantUsPerRequest).toBeGreaterThan(0);
      }
    }
    expect(report.paired[1]!.goal?.max_ratio).toBe(1.05);
    expect(['met', 'missed', 'undecided']).toContain(report.paired[1]!.goal?.verdict);
    expect(report.direct.rps).toBeGreaterThan(0);
    expect(report.node_floor.node.rps).toBeGreaterThan(0);
    expect(report.node_floor.node.non2xx + report.node_floor.node.errors).toBe(0);
    expect(report.node_floor.rpsRatio).toBeGreaterThan(0);
    for (const scenario of report.scenarios) {
      expect(scenario.gateway.rps, scenario.id).toBeGreaterThan(0);
      expect(scenario.nginx.rps, scenario.id).toBeGreaterThan(0);
      expect(scenario.gateway.non2xx + scenario.gateway.errors, scenario.id).toBe(0);
      expect(scenario.nginx.non2xx + scenario.nginx.errors, scenario.id).toBe(0);
      expect(scenario.rpsRatio, scenario.id).toBeGreaterThan(0);
      expect(scenario.gateway.usage?.rssMiB, scenario.id).toBeGreaterThan(10);
    }
    expect(report.fixed_rate.map((f) => f.scenario)).toEqual(['public']);
    expect(Number.isFinite(report.fixed_rate[0]!.gateway_added.p99Ms)).toBe(true);
    expect(report.versions.nginx).toMatch(/nginx/);
    // HTTP/2 against HTTP/1.1 through one gateway (h2load is among the tools bench/tools.sh installs).
    expect(report.http2?.h2.rps).toBeGreaterThan(0);
    expect(report.http2?.h1.rps).toBeGreaterThan(0);
    expect(report.http2!.h2.failed + report.http2!.h1.failed).toBe(0);
    expect(report.http2?.rpsRatio).toBeGreaterThan(0);
    expect(report.versions.node).toBe(process.version);
    // Every scenario is also reported against the bare Node proxy measured on the same core.
    for (const scenario of report.scenarios)
      expect(report.floor_ratios[scenario.id], scenario.id).toBeGreaterThan(0);
    expect(stdout).toContain('| **gw ÷ floor** |');
    expect(report.cpu_plan.note).not.toBe('');
    expect(stdout).toContain('| scenario | gateway rps | nginx rps |');
    expect(stdout).toMatch(/cache-redis\s+\d/);
  }, 300_000);
});
