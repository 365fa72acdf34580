/**
 * bench-propagation: how fast a config change reaches every gateway replica, and how long a replica
 * takes to start with a full topic. Real PostgreSQL (fresh database) and the local Kafka (fresh
 * topics, deleted afterwards). Writes bench-results/propagation-<timestamp>.json and prints it.
 *
 * 1. Propagation: 1,000 tenants (tenant + origin + route each) through the snapshot projector; 3 config
 *    planes (replicas) feeding real GatewayConfigStores in this process; then 200 route updates, one
 *    at a time: the time from the event append returning (a command's 2xx) to all 3 replicas having
 *    applied that version. Replicas share this process's CPU (2 cores here) with the projector.
 * 2. Cold start: 1,000 tenants × 20 routes published to a new topic; one new replica: time from start
 *    to ready (caught up with the high-water marks) and heap growth after GC.
 *
 * Run: make bench-propagation (node --expose-gc for the memory figure).
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import {
  type SnapshotProjector,
  startSnapshotProjector,
} from '@vantageedge/projections/snapshots/snapshot-projector';
import { newEvent, originState, routeState, tenantCreated } from '@vantageedge/projections/snapshots/testing';
import { streamName } from '@vantageedge/shared/domain/events';
import type { TenantSnapshot } from '@vantageedge/shared/domain/gateway-config';
import { PostgresEventStore } from '@vantageedge/shared/event-store/postgres/postgres-event-store';
import { silentLogger } from '@vantageedge/shared/observability/logger';
import type { EventLoopSlices } from '@vantageedge/shared/process/event-loop-slices';
import { sampleSnapshot, snapshotMessage } from '@vantageedge/shared/snapshot-bus/testing';
import { uniqueSuffix } from '@vantageedge/shared/testing/infrastructure';
import { deleteTestTopics } from '@vantageedge/shared/testing/kafka';
import { createTestDatabase } from '@vantageedge/shared/testing/postgres';
import { Registry } from 'prom-client';
import { GatewayConfigStore } from '../../config/gateway-config-store.js';
import type { TenantConfigSink } from '../../config/tenant-config-sink.js';
import { type ConfigPlane, startConfigPlane } from '../config-plane.js';
import { BenchBuses, runBench } from './bench-support.js';

const TENANTS = Number(process.env['BENCH_TENANTS'] ?? 1000);
const UPDATES = Number(process.env['BENCH_UPDATES'] ?? 200);
const REPLICAS = 3;
const COLD_ROUTES = 20;
const topics: string[] = [];
const buses = new BenchBuses();

function gatewayStore(): GatewayConfigStore {
  return new GatewayConfigStore({
    baseDomains: ['bench.test'],
    createUpstreamSet: () => ({ acquire: () => undefined, close: async () => {} }),
  });
}

/** Wraps a sink to call `onApplied` after every change. */
function observed(sink: GatewayConfigStore, onApplied: () => void): TenantConfigSink {
  return {
    apply(snapshot: TenantSnapshot) {
      const changed = sink.apply(snapshot);
      if (changed) onApplied();
      return changed;
    },
    // As a replica applies it: in slices of the event loop.
    async applyInSlices(snapshot: TenantSnapshot, slices: EventLoopSlices) {
      const changed = await sink.applyInSlices(snapshot, slices);
      if (changed) onApplied();
      return changed;
    },
    remove(tenantId: string) {
      return sink.remove(tenantId);
    },
    appliedVersions: () => sink.appliedVersions(),
  };
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const round = (value: number) => Math.round(value * 100) / 100;

async function inParallel<T>(items: readonly T[], concurrency: number, fn: (item: T) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

async function propagation() {
  const db = await createTestDatabase();
  const store = new PostgresEventStore({ pool: db.pool });
  const topic = `ve-bench-propagation-${uniqueSuffix()}`;
  topics.push(topic);
  const projector: SnapshotProjector = startSnapshotProjector({
    store,
    pool: db.pool,
    bus: buses.open(topic),
  });
  const tenants = Array.from({ length: TENANTS }, () => {
    const tenantId = randomUUID();
    const origin = originState(tenantId);
    return { tenantId, origin, route: routeState(tenantId, origin.origin_id, { path_pattern: '/v1/*' }) };
  });
  const seedStarted = performance.now();
  await inParallel(tenants, 8, async ({ tenantId, origin, route }) => {
    await store.appendToStream(streamName.tenant(tenantId), [tenantCreated(tenantId)]);
    await store.appendToStream(streamName.origin(origin.origin_id), [newEvent('OriginCreated', origin)]);
    await store.appendToStream(streamName.route(route.route_id), [newEvent('RouteCreated', route)]);
  });
  const head = await store.headPosition();
  while (projector.checkpoint() < head) await new Promise((resolve) => setTimeout(resolve, 50));
  await projector.idle();
  const seedMs = performance.now() - seedStarted;
  console.error(`seeded ${TENANTS} tenants in ${Math.round(seedMs)} ms`);

  let waiting: { tenantId: string; version: bigint; resolve: () => void } | null = null;
  const sinks: GatewayConfigStore[] = [];
  const check = () => {
    if (!waiting) return;
    const { tenantId, version, resolve } = waiting;
    if (sinks.every((sink) => (sink.appliedVersions().get(tenantId) ?? -1n) >= version)) {
      waiting = null;
      resolve();
    }
  };
  const planes: ConfigPlane[] = [];
  const readyStarted = performance.now();
  for (let index = 0; index < REPLICAS; index += 1) {
    const sink = gatewayStore();
    sinks.push(sink);
    planes.push(
      startConfigPlane({
        bus: buses.open(topic),
        sink: observed(sink, check),
        registry: new Registry(),
        logger: silentLogger,
        replicaId: `bench-${index}`,
      }),
    );
  }
  await Promise.all(planes.map((plane) => plane.ready));
  const replicasReadyMs = performance.now() - readyStarted;
  console.error(`${REPLICAS} replicas ready in ${Math.round(replicasReadyMs)} ms`);

  const samples: number[] = [];
  for (let index = 0; index < UPDATES; index += 1) {
    const { tenantId, route } = tenants[(index * 7) % tenants.length]!;
    const write = await store.appendToStream(streamName.route(route.route_id), [
      newEvent('RouteUpdated', { ...route, priority: index + 1, changed_fields: ['priority'] }),
    ]);
    const started = performance.now();
    // Set after the append returns; check() at once covers a replica that was faster than this line.
    const applied = new Promise<void>((resolve) => {
      waiting = { tenantId, version: write.position, resolve };
    });
    check();
    await applied;
    samples.push(performance.now() - started);
  }
  samples.sort((a, b) => a - b);
  for (const plane of planes) await plane.close();
  await projector.stop();
  await store.close();
  await db.drop();
  return {
    tenants: TENANTS,
    replicas: REPLICAS,
    updates: UPDATES,
    seed_ms: Math.round(seedMs),
    replicas_ready_ms: Math.round(replicasReadyMs),
    commit_to_all_replicas_ms: {
      p50: round(percentile(samples, 50)),
      p90: round(percentile(samples, 90)),
      p99: round(percentile(samples, 99)),
      max: round(samples.at(-1) ?? Number.NaN),
      mean: round(samples.reduce((sum, value) => sum + value, 0) / samples.length),
    },
  };
}

function heapAfterGc(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
  return process.memoryUsage().heapUsed;
}

async function coldStart() {
  const topic = `ve-bench-cold-${uniqueSuffix()}`;
  topics.push(topic);
  const publisher = buses.open(topic);
  const snapshots = Array.from({ length: TENANTS }, (_, index) =>
    snapshotMessage(sampleSnapshot(randomUUID(), BigInt(index + 1), { routes: COLD_ROUTES })),
  );
  const bytes = snapshots.reduce(
    (sum, message) => sum + JSON.stringify(message.kind === 'snapshot' ? message.snapshot : null).length,
    0,
  );
  for (let index = 0; index < snapshots.length; index += 200) {
    await publisher.publish(snapshots.slice(index, index + 200));
  }
  snapshots.length = 0;
  const heapBefore = heapAfterGc();
  const rssBefore = process.memoryUsage().rss;
  const sink = gatewayStore();
  const started = performance.now();
  const plane = startConfigPlane({
    bus: buses.open(topic),
    sink,
    registry: new Registry(),
    logger: silentLogger,
    replicaId: 'bench-cold',
  });
  await plane.ready;
  const readyMs = performance.now() - started;
  const heapAfter = heapAfterGc();
  const result = {
    tenants: TENANTS,
    routes_per_tenant: COLD_ROUTES,
    snapshot_json_bytes_total: bytes,
    time_to_ready_ms: Math.round(readyMs),
    tenants_applied: sink.size,
    heap_growth_mb: round((heapAfter - heapBefore) / 1024 / 1024),
    rss_growth_mb: round((process.memoryUsage().rss - rssBefore) / 1024 / 1024),
    gc_exposed: typeof (globalThis as { gc?: unknown }).gc === 'function',
  };
  await plane.close();
  return result;
}

async function main(startedAt: string): Promise<unknown> {
  const propagationResult = await propagation();
  console.error('propagation', JSON.stringify(propagationResult));
  const coldResult = await coldStart();
  const result = {
    benchmark: 'propagation',
    started_at: startedAt,
    machine: { cpus: os.cpus().length, node: process.version },
    note: 'replicas are config planes in one process sharing its CPU with the projector; Kafka and PostgreSQL local',
    propagation: propagationResult,
    cold_start: coldResult,
  };
  await buses.closeAll();
  await deleteTestTopics(topics);
  return result;
}

runBench('propagation', main);
