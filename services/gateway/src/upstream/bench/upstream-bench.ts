/**
 * Hot-path cost of the upstream set (make bench-upstream): acquire + release per algorithm and
 * target count, in-process, no network (active checks off; targets are never contacted). Writes
 * bench-results/upstream-<timestamp>.json and prints a summary. Also measures how long building a
 * set takes (what a snapshot with a changed origin costs), including the hash ring, and what a refused
 * acquire costs on an origin whose targets are all down (every circuit open): the event-loop time a
 * tenant's dead origin takes from the others per 503 (consistent hash used to walk its whole ring).
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { originConfig } from '@vantageedge/shared/domain/gateway-config';
import { writeBenchResult } from '@vantageedge/shared/testing/bench-results';
import { createUpstreamSet } from '../index.js';
import type { PickContext } from '../types.js';

const OPERATIONS = Number(process.env['BENCH_UPSTREAM_OPS'] ?? 1_000_000);
const RUNS = 5;

const ALGORITHMS = ['round_robin', 'least_connections', 'consistent_hash'] as const;
const TARGET_COUNTS = [3, 20, 100];

function origin(algorithm: (typeof ALGORITHMS)[number], targets: number, passiveChecks = true) {
  return originConfig.parse({
    id: randomUUID(),
    name: 'bench',
    targets: Array.from({ length: targets }, (_, i) => ({ url: `http://10.255.${i >> 8}.${i & 255}:8080` })),
    load_balancing: { algorithm, hash_on: 'header', hash_key: 'x-user-id' },
    health_check: { active: { enabled: false }, passive: { enabled: passiveChecks } },
  });
}

// A pool of distinct request contexts, built up front so the loop measures only the set.
const contexts: PickContext[] = Array.from({ length: 4096 }, (_, i) => ({
  clientIp: `192.0.2.${i & 255}`,
  path: '/orders',
  headers: { 'x-user-id': `user-${i}` },
}));
const ok = { kind: 'response', status: 200 } as const;

async function measure(algorithm: (typeof ALGORITHMS)[number], targets: number) {
  const set = createUpstreamSet(origin(algorithm, targets), { tenantId: 'bench' });
  const nsPerOp: number[] = [];
  for (let run = 0; run < RUNS + 1; run++) {
    const started = process.hrtime.bigint();
    for (let i = 0; i < OPERATIONS; i++) set.acquire(contexts[i & 4095]!)!.release(ok);
    const elapsed = Number(process.hrtime.bigint() - started);
    if (run > 0) nsPerOp.push(elapsed / OPERATIONS); // run 0 warms up the JIT
  }
  await set.close();
  nsPerOp.sort((a, b) => a - b);
  const median = nsPerOp[Math.floor(nsPerOp.length / 2)]!;
  return {
    algorithm,
    targets,
    nsPerOpMedian: round(median),
    nsPerOpRuns: nsPerOp.map(round),
    opsPerSecond: Math.round(1e9 / median),
  };
}

/** One acquire (refused: undefined) on an origin whose targets all have their circuit open. */
async function measureAllDown(algorithm: (typeof ALGORITHMS)[number], targets: number) {
  const set = createUpstreamSet(origin(algorithm, targets, false), { tenantId: 'bench' });
  // Connect errors until no target is left (each circuit opens after its consecutive failures).
  for (let i = 0; ; i++) {
    const lease = set.acquire(contexts[i & 4095]!);
    if (lease === undefined) break;
    lease.release({ kind: 'connect_error' });
  }
  const operations = Math.max(1, Math.floor(OPERATIONS / 10));
  const nsPerOp: number[] = [];
  for (let run = 0; run < RUNS + 1; run++) {
    const started = process.hrtime.bigint();
    for (let i = 0; i < operations; i++) {
      if (set.acquire(contexts[i & 4095]!) !== undefined) throw new Error(`${algorithm}: a target came back`);
    }
    const elapsed = Number(process.hrtime.bigint() - started);
    if (run > 0) nsPerOp.push(elapsed / operations);
  }
  await set.close();
  nsPerOp.sort((a, b) => a - b);
  return { algorithm, targets, refusedNsPerOpMedian: round(nsPerOp[Math.floor(nsPerOp.length / 2)]!) };
}

async function buildCost(algorithm: (typeof ALGORITHMS)[number], targets: number) {
  const config = origin(algorithm, targets);
  const started = process.hrtime.bigint();
  const set = createUpstreamSet(config, { tenantId: 'bench' });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  await set.close();
  return { algorithm, targets, buildMs: round(ms) };
}

const round = (value: number) => Math.round(value * 10) / 10;

const acquireRelease = [];
for (const algorithm of ALGORITHMS)
  for (const targets of TARGET_COUNTS) acquireRelease.push(await measure(algorithm, targets));
const allDown = [];
for (const algorithm of ALGORITHMS) allDown.push(await measureAllDown(algorithm, 100));
const build = [];
for (const algorithm of ALGORITHMS) build.push(await buildCost(algorithm, 100));

const result = {
  benchmark: 'upstream-acquire-release',
  at: new Date().toISOString(),
  node: process.version,
  cpus: os.cpus().length,
  loadAverage: os.loadavg().map(round),
  operationsPerRun: OPERATIONS,
  runs: RUNS,
  acquireRelease,
  allDown,
  build,
};
const file = await writeBenchResult('upstream', result.at, result);
console.table(acquireRelease.map(({ nsPerOpRuns: _, ...row }) => row));
console.table(allDown);
console.table(build);
console.log(`load average ${result.loadAverage.join(' ')} on ${result.cpus} cpus; written to ${file}`);
