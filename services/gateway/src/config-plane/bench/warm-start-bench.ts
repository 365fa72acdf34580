/**
 * bench-warm-start: how long a replica's warm start from the snapshot store takes, and the CPU and
 * memory it uses, at 1,000 and 10,000 tenants' files (BENCH_WARM_START_TENANTS, comma-separated; add
 * 100000 to measure that too), reading one file at a time and SNAPSHOT_READ_CONCURRENCY at once
 * (BENCH_WARM_START_CONCURRENCY). No servers. Writes bench-results/warm-start-<timestamp>.json and
 * prints it. Figures for docs/capacity.md.
 *
 * Per tenant count the files are written once (every tenant: 1 origin of 2 targets and
 * BENCH_WARM_START_ROUTES routes, default 5, built by the gateway's test snapshot builder), then each
 * concurrency is measured BENCH_WARM_START_ROUNDS times (default 2), alternating, each in a fresh
 * process so that its peak RSS is its own: SnapshotStore.load (read, parse, validate) and then every
 * snapshot applied to a GatewayConfigStore, as the config plane does. Measured: wall time and CPU (user
 * + system) of each step, RSS before and peak RSS. The files are in the page cache (just written; the
 * cache is not dropped on a shared machine): a start after a reboot also waits on the disk.
 *
 * Run: make bench-warm-start
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GatewayConfigStore } from '../../config/gateway-config-store.js';
import { buildSnapshot } from '../../testing/snapshots.js';
import { SNAPSHOT_READ_CONCURRENCY, SnapshotStore, tenantFileName } from '../snapshot-store.js';
import { runBench } from './bench-support.js';

const COUNTS = (process.env['BENCH_WARM_START_TENANTS'] ?? '1000,10000').split(',').map(Number);
const ROUTES = Number(process.env['BENCH_WARM_START_ROUTES'] ?? 5);
const CONCURRENCIES = (process.env['BENCH_WARM_START_CONCURRENCY'] ?? `1,${SNAPSHOT_READ_CONCURRENCY}`)
  .split(',')
  .map(Number);
const ROUNDS = Number(process.env['BENCH_WARM_START_ROUNDS'] ?? 2);
const MEASURE_FLAG = '--measure';

const round = (value: number, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits;
const mb = (bytes: number) => round(bytes / 1024 / 1024);
const cpuMs = (used: NodeJS.CpuUsage) => Math.round((used.user + used.system) / 1000);

interface WarmStartRun {
  tenants_loaded: number;
  skipped: number;
  load_ms: number;
  load_cpu_ms: number;
  apply_ms: number;
  apply_cpu_ms: number;
  total_ms: number;
  rss_before_mb: number;
  peak_rss_mb: number;
}

/** In the child process: one warm start from `dir`, reading `concurrency` files at once. */
async function measure(dir: string, concurrency: number): Promise<WarmStartRun> {
  const sink = new GatewayConfigStore({
    baseDomains: ['bench.test'],
    createUpstreamSet: () => ({ acquire: () => undefined, close: async () => {} }),
  });
  const rssBefore = process.memoryUsage().rss;
  const store = new SnapshotStore(dir, fs, { readConcurrency: concurrency });
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const loaded = await store.load();
  const loadedAt = performance.now();
  const loadCpu = process.cpuUsage(cpuBefore);
  for (const snapshot of loaded.snapshots) sink.apply(snapshot);
  const ended = performance.now();
  const applyCpu = process.cpuUsage(cpuBefore);
  const result = {
    tenants_loaded: loaded.snapshots.length,
    skipped: loaded.skipped.length,
    load_ms: Math.round(loadedAt - started),
    load_cpu_ms: cpuMs(loadCpu),
    apply_ms: Math.round(ended - loadedAt),
    apply_cpu_ms: cpuMs(applyCpu) - cpuMs(loadCpu),
    total_ms: Math.round(ended - started),
    rss_before_mb: mb(rssBefore),
    peak_rss_mb: mb(process.resourceUsage().maxRSS * 1024),
  };
  await sink.close();
  return result;
}

/** Runs `measure` in a fresh node process (same loader flags) and returns what it printed. */
function measureInChild(dir: string, concurrency: number): Promise<WarmStartRun> {
  const script = fileURLToPath(import.meta.url);
  const child = spawn(
    process.execPath,
    [...process.execArgv, script, MEASURE_FLAG, dir, String(concurrency)],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    output += chunk;
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(JSON.parse(output) as WarmStartRun);
      else reject(new Error(`warm start measurement exited with ${code}`));
    });
  });
}

async function writeTenantFiles(dir: string, tenants: number): Promise<number> {
  await fs.mkdir(dir, { mode: 0o700 });
  let bytes = 0;
  for (let index = 0; index < tenants; index += 100) {
    const batch = Array.from({ length: Math.min(100, tenants - index) }, (_, i) => {
      const origin = { id: randomUUID(), targets: ['http://10.0.0.1:8080', 'http://10.0.0.2:8080'] };
      const snapshot = buildSnapshot({
        subdomain: `tenant-${index + i}`,
        version: index + i + 1,
        origins: [origin],
        routes: Array.from({ length: ROUTES }, (_, r) => ({
          origin_id: origin.id,
          path_pattern: `/v1/resource-${r}/*`,
        })),
      });
      const json = JSON.stringify(snapshot);
      bytes += json.length;
      return fs.writeFile(path.join(dir, tenantFileName(snapshot.tenant_id)), json, { mode: 0o600 });
    });
    await Promise.all(batch);
  }
  return bytes;
}

async function benchTenants(root: string, tenants: number) {
  const dir = path.join(root, `tenants-${tenants}`);
  const writeStarted = performance.now();
  const bytes = await writeTenantFiles(dir, tenants);
  const writeMs = Math.round(performance.now() - writeStarted);
  const runs: Array<{ concurrency: number; round: number } & WarmStartRun> = [];
  for (let roundIndex = 1; roundIndex <= ROUNDS; roundIndex++) {
    for (const concurrency of CONCURRENCIES) {
      const run = { concurrency, round: roundIndex, ...(await measureInChild(dir, concurrency)) };
      console.error('warm start', JSON.stringify({ tenants, ...run }));
      runs.push(run);
    }
  }
  await fs.rm(dir, { recursive: true, force: true });
  return { tenants, routes_per_tenant: ROUTES, file_bytes_total: bytes, write_ms: writeMs, runs };
}

async function main(startedAt: string): Promise<unknown> {
  const loadBefore = os.loadavg().map((v) => round(v, 2));
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 've-bench-warm-start-'));
  const results = [];
  try {
    for (const tenants of COUNTS) results.push(await benchTenants(root, tenants));
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
  return {
    benchmark: 'warm-start',
    started_at: startedAt,
    machine: {
      cpus: os.cpus().length,
      node: process.version,
      load_average_before: loadBefore,
      load_average_after: os.loadavg().map((v) => round(v, 2)),
    },
    note: 'each run a fresh process; files in the page cache; concurrency 1 = one file at a time',
    warm_start: results,
  };
}

const measureAt = process.argv.indexOf(MEASURE_FLAG);
if (measureAt >= 0) {
  const [dir, concurrency] = process.argv.slice(measureAt + 1);
  measure(dir!, Number(concurrency))
    .then((result) => {
      process.stdout.write(JSON.stringify(result));
      process.exit(0);
    })
    .catch((error) => {
      console.error(error);
      process.exit(1);
    });
} else {
  runBench('warm-start', main);
}
