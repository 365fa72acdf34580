/**
 * bench-capacity: what one gateway replica holds and how long it takes to start, at 1,000, 10,000 and
 * 50,000 tenants (BENCH_CAPACITY_TENANTS, comma-separated), and how big a tenant's snapshot gets on
 * the topic against its message limit. The local Kafka (fresh topics, deleted afterwards); the replica
 * is a config plane feeding a real GatewayConfigStore in this process. Writes
 * bench-results/capacity-<timestamp>.json and prints it. Figures for docs/capacity.md.
 *
 * Per tenant count: every tenant has 1 origin and BENCH_CAPACITY_ROUTES routes (default 5); measured:
 * time and CPU (user + system, stable on a shared machine) from subscribing to ready (caught up with the
 * high-water marks), heap and RSS growth after GC, bytes on the topic.
 * Snapshot size: the encoded record (gzip above 16 KiB) of one tenant with 1 … 1,000 routes (the
 * default TENANT_MAX_ROUTES), readable paths and random ones (worst case for compression).
 *
 * Run: make bench-capacity (node --expose-gc --max-old-space-size=4096).
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { silentLogger } from '@vantageedge/shared/observability/logger';
import { encodeSnapshotMessage } from '@vantageedge/shared/snapshot-bus/codec';
import { sampleSnapshot, snapshotMessage } from '@vantageedge/shared/snapshot-bus/testing';
import { uniqueSuffix } from '@vantageedge/shared/testing/infrastructure';
import { deleteTestTopics } from '@vantageedge/shared/testing/kafka';
import { Registry } from 'prom-client';
import { GatewayConfigStore } from '../../config/gateway-config-store.js';
import { startConfigPlane } from '../config-plane.js';
import { BENCH_MAX_MESSAGE_BYTES, BenchBuses, runBench } from './bench-support.js';

const COUNTS = (process.env['BENCH_CAPACITY_TENANTS'] ?? '1000,10000,50000').split(',').map(Number);
const ROUTES = Number(process.env['BENCH_CAPACITY_ROUTES'] ?? 5);
const topics: string[] = [];
const buses = new BenchBuses();

const round = (value: number, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits;
const mb = (bytes: number) => round(bytes / 1024 / 1024);

function heapAfterGc(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
  return process.memoryUsage().heapUsed;
}

async function coldStart(tenants: number) {
  const topic = `ve-bench-capacity-${uniqueSuffix()}`;
  topics.push(topic);
  const publisher = buses.open(topic);
  let topicBytes = 0;
  const publishStarted = performance.now();
  for (let index = 0; index < tenants; index += 500) {
    const batch = Array.from({ length: Math.min(500, tenants - index) }, (_, i) =>
      snapshotMessage(sampleSnapshot(randomUUID(), BigInt(index + i + 1), { routes: ROUTES })),
    );
    for (const message of batch)
      topicBytes += encodeSnapshotMessage(message, BENCH_MAX_MESSAGE_BYTES).value?.length ?? 0;
    await publisher.publish(batch);
  }
  const publishMs = performance.now() - publishStarted;
  const heapBefore = heapAfterGc();
  const rssBefore = process.memoryUsage().rss;
  const sink = new GatewayConfigStore({
    baseDomains: ['bench.test'],
    createUpstreamSet: () => ({ acquire: () => undefined, close: async () => {} }),
  });
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const plane = startConfigPlane({
    bus: buses.open(topic),
    sink,
    registry: new Registry(),
    logger: silentLogger,
    replicaId: 'bench-capacity',
  });
  await plane.ready;
  const readyMs = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  const heapAfter = heapAfterGc();
  const result = {
    tenants,
    routes_per_tenant: ROUTES,
    topic_bytes: topicBytes,
    publish_ms: Math.round(publishMs),
    time_to_ready_ms: Math.round(readyMs),
    cpu_to_ready_ms: Math.round((cpu.user + cpu.system) / 1000),
    tenants_applied: sink.size,
    heap_growth_mb: mb(heapAfter - heapBefore),
    heap_per_tenant_kb: round((heapAfter - heapBefore) / 1024 / tenants, 2),
    rss_growth_mb: mb(process.memoryUsage().rss - rssBefore),
  };
  await plane.close();
  await sink.close();
  console.error('cold start', JSON.stringify(result));
  return result;
}

function snapshotSizes() {
  const rows = [];
  for (const routes of [1, 10, 100, 1000]) {
    for (const randomPaths of [false, true]) {
      const message = snapshotMessage(sampleSnapshot(randomUUID(), 1n, { routes, randomPaths }));
      const json = message.kind === 'snapshot' ? JSON.stringify(message.snapshot).length : 0;
      const record = encodeSnapshotMessage(message, BENCH_MAX_MESSAGE_BYTES);
      rows.push({
        routes,
        paths: randomPaths ? 'random' : 'readable',
        json_bytes: json,
        record_bytes: record.value?.length ?? 0,
        share_of_limit_percent: round((100 * (record.value?.length ?? 0)) / BENCH_MAX_MESSAGE_BYTES, 2),
      });
    }
  }
  return rows;
}

async function main(startedAt: string): Promise<unknown> {
  const sizes = snapshotSizes();
  console.error('snapshot sizes', JSON.stringify(sizes));
  const cold = [];
  for (const count of COUNTS) cold.push(await coldStart(count));
  const result = {
    benchmark: 'capacity',
    started_at: startedAt,
    machine: {
      cpus: os.cpus().length,
      node: process.version,
      load_average: os.loadavg().map((v) => round(v)),
    },
    note: 'one replica = a config plane + GatewayConfigStore in this process; local single-broker Kafka',
    snapshot_sizes: sizes,
    max_message_bytes: BENCH_MAX_MESSAGE_BYTES,
    cold_start: cold,
  };
  await buses.closeAll();
  await deleteTestTopics(topics);
  return result;
}

runBench('capacity', main);
