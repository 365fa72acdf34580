/**
 * bench-churn-propagation: how fast one tenant's config change reaches every gateway replica while
 * another tenant keeps changing a config near the snapshot bound. Real PostgreSQL (fresh database) and
 * the local Kafka (fresh topic, deleted afterwards). Writes bench-results/churn-propagation-<timestamp>.json.
 *
 * Tenant A: BENCH_CHURN_ROUTES routes of ~1.9 KB paths (1,300: ≈ 3.3 MB of JSON), one route updated
 * every BENCH_CHURN_INTERVAL_MS (100: the default admin command rate). Tenant B: one route. Two config
 * planes (replicas) feed GatewayConfigStores in this process. B's route is updated 5 times idle, then
 * 10 times during A's churn: for each, the time from the event append returning (a command's 2xx) to both
 * replicas having applied it, how long the projector took to commit it (null: the replicas had it first,
 * B being stored ahead of A's batch), and how many batches the projector committed until either (each
 * storing A's whole snapshot).
 *
 * Run: make bench-churn-propagation
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { startSnapshotProjector } from '@vantageedge/projections/snapshots/snapshot-projector';
import { newEvent, originState, routeState, tenantCreated } from '@vantageedge/projections/snapshots/testing';
import { streamName } from '@vantageedge/shared/domain/events';
import type { EventStore } from '@vantageedge/shared/event-store/port';
import { PostgresEventStore } from '@vantageedge/shared/event-store/postgres/postgres-event-store';
import { silentLogger } from '@vantageedge/shared/observability/logger';
import { uniqueSuffix } from '@vantageedge/shared/testing/infrastructure';
import { deleteTestTopics } from '@vantageedge/shared/testing/kafka';
import { createTestDatabase } from '@vantageedge/shared/testing/postgres';
import { Registry } from 'prom-client';
import { GatewayConfigStore } from '../../config/gateway-config-store.js';
import { startConfigPlane } from '../config-plane.js';
import { BenchBuses, runBench } from './bench-support.js';

const CHURN_ROUTES = Number(process.env['BENCH_CHURN_ROUTES'] ?? 1300);
const CHURN_INTERVAL_MS = Number(process.env['BENCH_CHURN_INTERVAL_MS'] ?? 100);
const REPLICAS = 2;
const topic = `ve-bench-churn-${uniqueSuffix()}`;
const buses = new BenchBuses();

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function tenantWithRoutes(store: EventStore, routes: number, pathPattern: (index: number) => string) {
  const tenantId = randomUUID();
  const origin = originState(tenantId);
  const states = Array.from({ length: routes }, (_, index) =>
    routeState(tenantId, origin.origin_id, { path_pattern: pathPattern(index) }),
  );
  await store.appendToStream(streamName.tenant(tenantId), [tenantCreated(tenantId)]);
  await store.appendToStream(streamName.origin(origin.origin_id), [newEvent('OriginCreated', origin)]);
  await store.appendToStream(
    streamName.tenant(tenantId),
    states.map((route) => newEvent('RouteCreated', route)),
  );
  let priority = 0;
  return {
    tenantId,
    /** Updates one of its routes; resolves to the event's position once appended. */
    async change(): Promise<bigint> {
      priority += 1;
      const route = states[priority % states.length]!;
      const written = await store.appendToStream(streamName.route(route.route_id), [
        newEvent('RouteUpdated', { ...route, priority, changed_fields: ['priority'] }),
      ]);
      return written.position;
    },
  };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

async function main(startedAt: string): Promise<unknown> {
  const db = await createTestDatabase();
  const store = new PostgresEventStore({ pool: db.pool });
  const projector = startSnapshotProjector({ store, pool: db.pool, bus: buses.open(topic) });
  const churning = await tenantWithRoutes(store, CHURN_ROUTES, (index) => `/${'a'.repeat(1900)}/${index}`);
  const other = await tenantWithRoutes(store, 1, () => '/v1/*');
  const head = await store.headPosition();
  while (projector.checkpoint() < head) await sleep(50);
  await projector.idle();
  const { rows } = await db.pool.query<{ json_bytes: string }>(
    'select json_bytes from snapshot_state where tenant_id = $1',
    [churning.tenantId],
  );

  const sinks = Array.from(
    { length: REPLICAS },
    () =>
      new GatewayConfigStore({
        baseDomains: ['bench.test'],
        createUpstreamSet: () => ({ acquire: () => undefined, close: async () => {} }),
      }),
  );
  const planes = sinks.map((sink, index) =>
    startConfigPlane({
      bus: buses.open(topic),
      sink,
      registry: new Registry(),
      logger: silentLogger,
      replicaId: `bench-${index}`,
    }),
  );
  await Promise.all(planes.map((plane) => plane.ready));

  /** When the projector's checkpoint moved (each a committed batch), sampled every turn of the loop. */
  const commits: number[] = [];
  let sampling = true;
  const sampler = (async () => {
    let last = projector.checkpoint();
    while (sampling) {
      if (projector.checkpoint() !== last) {
        last = projector.checkpoint();
        commits.push(performance.now());
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
  })();

  const otherChange = async () => {
    const position = await other.change();
    const started = performance.now();
    let committedMs: number | undefined;
    while (!sinks.every((sink) => (sink.appliedVersions().get(other.tenantId) ?? -1n) >= position)) {
      if (committedMs === undefined && projector.checkpoint() >= position)
        committedMs = performance.now() - started;
      await sleep(2);
    }
    const toAllReplicasMs = performance.now() - started;
    // Stored ahead of the churning tenant's batch, the change may reach the replicas before the
    // checkpoint passes it: the batches counted are those committed until either.
    const committed = started + (committedMs ?? toAllReplicasMs);
    return {
      to_all_replicas_ms: Math.round(toAllReplicasMs),
      committed_ms: committedMs === undefined ? null : Math.round(committedMs),
      batches_committed: commits.filter((at) => at > started && at <= committed).length,
    };
  };

  type Sample = Awaited<ReturnType<typeof otherChange>>;
  const idle: Sample[] = [];
  for (let index = 0; index < 5; index += 1) {
    idle.push(await otherChange());
    await sleep(200);
  }
  let churn = true;
  let churnChanges = 0;
  const churner = (async () => {
    while (churn) {
      await churning.change();
      churnChanges += 1;
      await sleep(CHURN_INTERVAL_MS);
    }
  })();
  await sleep(2000);
  const loaded: Sample[] = [];
  for (let index = 0; index < 10; index += 1) {
    loaded.push(await otherChange());
    await sleep(300);
  }
  churn = false;
  await churner;
  sampling = false;
  await sampler;

  const summary = (samples: readonly Sample[]) => ({
    to_all_replicas_ms: samples.map((sample) => sample.to_all_replicas_ms),
    median_to_all_replicas_ms: median(samples.map((sample) => sample.to_all_replicas_ms)),
    committed_ms: samples.map((sample) => sample.committed_ms),
    batches_committed_meanwhile: samples.map((sample) => sample.batches_committed),
  });
  const result = {
    benchmark: 'churn-propagation',
    started_at: startedAt,
    machine: { cpus: os.cpus().length, node: process.version, load_average: os.loadavg() },
    churning_tenant: {
      json_bytes: Number(rows[0]?.json_bytes ?? 0),
      interval_ms: CHURN_INTERVAL_MS,
      changes: churnChanges,
    },
    idle: summary(idle),
    during_churn: summary(loaded),
  };
  for (const plane of planes) await plane.close();
  await projector.stop();
  await buses.closeAll();
  await store.close();
  await db.drop();
  await deleteTestTopics([topic]);
  return result;
}

runBench('churn-propagation', main);
