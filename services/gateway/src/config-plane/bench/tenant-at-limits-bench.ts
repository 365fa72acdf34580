/**
 * What one tenant at the default limits costs a gateway replica: 1,000 routes (TENANT_MAX_ROUTES)
 * under 200 allow + 200 deny tenant-wide IPv6 /64s (the most `settings.ip_rules` holds), 10 origins ×
 * 100 targets (TENANT_MAX_TARGETS) with consistent hashing. Through the full request pipeline (every
 * route policy, in-memory stores), in this process, no Kafka. Measured: CPU (user + system) and heap
 * after GC of the first apply; CPU of 10 versions where only the version changed and of 10 whose IP
 * rules changed; heap and RSS growth after those 20 versions.
 *
 * Then two tenants at the control plane's snapshot bound (TENANT_MAX_SNAPSHOT_JSON_BYTES, 2 MiB of JSON;
 * each route under TENANT_MAX_ROUTE_BYTES) whose routes carry the most of one costly policy:
 * - header_heavy: 30 set + 30 add lines in each of request_headers, response_headers and query
 *   (180 value templates a route: literals, one variable, literals and variables);
 * - ip_rule_heavy: 200 allow + 200 deny ranges of its own on each route (IPv4 and IPv6).
 * Each goes through decodeSnapshotRecord (with a subscription's route cache) and apply: CPU of each for
 * the first version and for a version that changes every route, and heap after GC once compiled.
 * Then another tenant of the same shape goes the way a replica takes it (decodeAndDeliver, then
 * applyInSlices: in slices of the event loop), interleaved with versions decoded and applied in one go
 * as before: the longest the event loop was blocked (see blockedWhile; the worst of 3 versions that
 * change every route) and the CPU and wall time of decode and apply (medians).
 * Prints JSON. Figures for docs/capacity.md and docs/benchmarks.md.
 *
 * Run: make bench-tenant-limits
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { TenantSnapshot } from '@vantageedge/shared/domain/gateway-config';
import { EventLoopSlices } from '@vantageedge/shared/process/event-loop-slices';
import {
  decodeSnapshotRecord,
  decodingSnapshotRecord,
  type EncodedSnapshotRecord,
  encodeSnapshotMessage,
} from '@vantageedge/shared/snapshot-bus/codec';
import { RouteValidationCache } from '@vantageedge/shared/snapshot-bus/route-validation-cache';
import { decodeAndDeliver } from '@vantageedge/shared/snapshot-bus/sliced-delivery';
import type { GatewayConfigStore } from '../../config/gateway-config-store.js';
import { startTestGateway } from '../../testing/gateway-harness.js';
import { buildSnapshot, type TestRoute } from '../../testing/snapshots.js';
import { BENCH_MAX_MESSAGE_BYTES } from './bench-support.js';

const VERSIONS = 10;
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc');

const hex = (n: number) => n.toString(16);
const origins = Array.from({ length: 10 }, (_, o) => ({
  id: randomUUID(),
  targets: Array.from({ length: 100 }, (_, t) => `http://10.${o}.${t >> 8}.${t & 255}:8080`),
  load_balancing: { algorithm: 'consistent_hash' },
}));
const tenantId = randomUUID();

/** A fresh object graph per version, as the config plane decodes each message. */
function snapshotAt(version: number, rulesVersion = 0) {
  return structuredClone(
    buildSnapshot({
      tenantId,
      version,
      subdomain: 'at-limits',
      origins,
      routes: Array.from({ length: 1000 }, (_, i) => ({
        origin_id: origins[i % origins.length]!.id,
        path_pattern: `/api/v1/resource-${i}/*`,
      })),
      settings: {
        ip_rules: {
          allow: Array.from(
            { length: 200 },
            (_, i) => `2001:db8:${hex(i)}:${hex(i * 7 + rulesVersion)}::/64`,
          ),
          deny: Array.from({ length: 200 }, (_, i) => `2001:db8:f${hex(i)}:${hex(i * 3)}::/64`),
        },
      },
    }),
  );
}

const cpuMs = (run: () => void): number => {
  const before = process.cpuUsage();
  run();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000;
};
const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1]!;
const mb = (bytes: number) => Math.round(bytes / 1e5) / 10;
const settled = () => {
  gc();
  gc();
  return process.memoryUsage();
};

/** The control plane's default TENANT_MAX_SNAPSHOT_JSON_BYTES. */
const SNAPSHOT_JSON_BOUND = 2 * 1024 * 1024;
const ROUTE_BYTES_BOUND = 32 * 1024;
const pad = (n: number) => String(n).padStart(2, '0');

/**
 * 30 `name: value` entries; every third value a literal, one variable, or literals around two (each
 * written once in the tenant: none is compiled once for several headers or routes).
 */
function templates(prefix: string, version: number, route: number): Record<string, string> {
  const kinds = [
    (i: number) => `v${version}.${i}`,
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the route policies' own value-template syntax
    () => '${request_id}',
    (i: number) => `\${tenant_id}/\${route_id}/${prefix}${route}.${i}`,
  ];
  return Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`${prefix}-${pad(i)}`, kinds[i % 3]!(i)]));
}

function headerHeavyRoute(version: number, route: number): Omit<TestRoute, 'origin_id' | 'path_pattern'> {
  const headers = (side: string) => ({
    set: templates(`${side}s`, version, route),
    add: templates(`${side}a`, version, route),
    remove: [],
  });
  return {
    request_headers: headers('q'),
    response_headers: headers('r'),
    query: { set: templates('qs', version, route), add: templates('qa', version, route), remove: [] },
  };
}

/** 200 allow (IPv4 /24s) and 200 deny (IPv6 /64s), different on every route and version. */
function ipRuleHeavyRoute(version: number, route: number): Omit<TestRoute, 'origin_id' | 'path_pattern'> {
  return {
    ip_rules: {
      allow: Array.from({ length: 200 }, (_, i) => `10.${route & 255}.${(i + version) & 255}.0/24`),
      deny: Array.from({ length: 200 }, (_, i) => `2001:db8:${hex(route)}:${hex(i * 31 + version)}::/64`),
    },
  };
}

type RoutePolicies = (version: number, route: number) => Omit<TestRoute, 'origin_id' | 'path_pattern'>;

/** As many routes as fit the snapshot bound (at most 1,000), with their ids fixed across versions. */
function heavyTenant(subdomain: string, policies: RoutePolicies) {
  const id = randomUUID();
  const origin = { id: randomUUID(), targets: ['http://10.0.0.1:8080'] };
  const routeIds: string[] = [];
  const snapshotAt = (version: number) =>
    buildSnapshot({
      tenantId: id,
      version,
      subdomain,
      origins: [origin],
      routes: routeIds.map((routeId, index) => ({
        id: routeId,
        origin_id: origin.id,
        path_pattern: `/r${index}/*`,
        ...policies(version, index),
      })),
    });
  const jsonBytes = (snapshot: TenantSnapshot) => Buffer.byteLength(JSON.stringify(snapshot));
  const withRoutes = (count: number) => {
    routeIds.length = 0;
    for (let i = 0; i < count; i++) routeIds.push(randomUUID());
    return jsonBytes(snapshotAt(2));
  };
  const routeBytes = withRoutes(1) - withRoutes(0);
  if (routeBytes > ROUTE_BYTES_BOUND) throw new Error(`${subdomain}: a route is ${routeBytes} bytes`);
  let count = Math.min(1000, Math.floor(SNAPSHOT_JSON_BOUND / routeBytes));
  for (let bytes = withRoutes(count); bytes > SNAPSHOT_JSON_BOUND; bytes = withRoutes(count)) {
    count = Math.min(count - 1, Math.floor((count * SNAPSHOT_JSON_BOUND) / bytes));
  }
  return { routes: count, snapshotAt };
}

const encoded = (snapshot: TenantSnapshot): EncodedSnapshotRecord =>
  encodeSnapshotMessage(
    { kind: 'snapshot', tenantId: snapshot.tenant_id, version: BigInt(snapshot.version), snapshot },
    BENCH_MAX_MESSAGE_BYTES,
  );

/** The snapshot as a replica receives it: encoded, then decoded with its subscription's route cache. */
function decoded(
  snapshot: TenantSnapshot,
  routes: RouteValidationCache,
): { snapshot: TenantSnapshot; cpu: number } {
  const record = encoded(snapshot);
  const headers = record.headers as Record<string, string | undefined>;
  let result: ReturnType<typeof decodeSnapshotRecord> | undefined;
  const cpu = cpuMs(() => {
    result = decodeSnapshotRecord({ key: record.key, value: record.value, headers }, undefined, routes);
  });
  if (!result?.ok || result.message.kind !== 'snapshot') throw new Error('snapshot not decoded');
  return { snapshot: result.message.snapshot, cpu };
}

function measureHeavyTenant(store: GatewayConfigStore, subdomain: string, policies: RoutePolicies) {
  const tenant = heavyTenant(subdomain, policies);
  const routes = new RouteValidationCache();
  const firstSnapshot = tenant.snapshotAt(1);
  const json_bytes = Buffer.byteLength(JSON.stringify(firstSnapshot));
  const first = decoded(firstSnapshot, routes);
  const start = settled();
  const firstApply = cpuMs(() => store.apply(first.snapshot));
  const applied = settled();
  const changed = decoded(tenant.snapshotAt(2), routes);
  const changedApply = cpuMs(() => store.apply(changed.snapshot));
  const end = settled();
  return {
    routes: tenant.routes,
    json_bytes,
    first_decode_cpu_ms: Math.round(first.cpu),
    first_apply_cpu_ms: Math.round(firstApply),
    compiled_heap_mb: mb(applied.heapUsed - start.heapUsed),
    every_route_changed_decode_cpu_ms: Math.round(changed.cpu),
    every_route_changed_apply_cpu_ms: Math.round(changedApply),
    heap_after_every_route_changed_mb: mb(end.heapUsed - start.heapUsed),
  };
}

/**
 * What `run` cost the event loop: the most main-thread CPU between two of its turns
 * (`longest_block_cpu_ms`: a setImmediate probe reads process.threadCpuUsage at each turn; other
 * processes on the machine do not count, the main thread's GC does), the longest delay of a 1 ms timer
 * (`longest_block_ms`, perf_hooks' monitorEventLoopDelay: wall time, so on a loaded machine it also
 * counts the time the process waited for a CPU), and CPU and wall time in all.
 */
async function blockedWhile(run: () => Promise<unknown> | unknown) {
  const delay = monitorEventLoopDelay({ resolution: 1 });
  let longestTurnCpu = 0;
  let probing = true;
  let lastTurn = process.threadCpuUsage();
  const probe = () => {
    const now = process.threadCpuUsage();
    longestTurnCpu = Math.max(longestTurnCpu, now.user - lastTurn.user + now.system - lastTurn.system);
    lastTurn = now;
    if (probing) setImmediate(probe);
  };
  delay.enable();
  // A turn first, so that the monitor's timer is running before the work starts.
  await new Promise((resolve) => setTimeout(resolve, 5));
  lastTurn = process.threadCpuUsage();
  setImmediate(probe);
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  await run();
  const wall = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  // A turn after, so that a block at the very end is seen.
  await new Promise((resolve) => setTimeout(resolve, 5));
  probing = false;
  delay.disable();
  return {
    longestBlockCpuMs: Math.round(longestTurnCpu / 100) / 10,
    longestBlockMs: Math.round(delay.max / 1e5) / 10,
    cpuMs: Math.round((cpu.user + cpu.system) / 1000),
    wallMs: Math.round(wall),
  };
}

type Blocked = Awaited<ReturnType<typeof blockedWhile>>;
const reported = (blocked: Blocked) => ({
  longest_block_cpu_ms: blocked.longestBlockCpuMs,
  longest_block_ms: blocked.longestBlockMs,
  cpu_ms: blocked.cpuMs,
  wall_ms: blocked.wallMs,
});

/**
 * Another tenant of the same shape, the way a replica takes a record (decodeAndDeliver, applyInSlices),
 * and the same decode and apply in one go (as before slicing): what each cost the event loop.
 */
async function measureSlicedApply(store: GatewayConfigStore, subdomain: string, policies: RoutePolicies) {
  const tenant = heavyTenant(`${subdomain}-sliced`, policies);
  const routes = new RouteValidationCache();
  let turns = 0;
  const inSlices = async (version: number) => {
    const record = encoded(tenant.snapshotAt(version));
    settled();
    return blockedWhile(() =>
      decodeAndDeliver(
        decodingSnapshotRecord({ ...record, headers: record.headers }, undefined, routes),
        record.key,
        {
          onMessage: async (message) => {
            if (message.kind !== 'snapshot') return;
            const slices = new EventLoopSlices();
            if (!(await store.applyInSlices(message.snapshot, slices))) throw new Error('not applied');
            turns += slices.turns;
          },
        },
        () => true,
      ),
    );
  };
  const inOneGo = async (version: number) => {
    const record = encoded(tenant.snapshotAt(version));
    settled();
    return blockedWhile(() => {
      const result = decodeSnapshotRecord({ ...record, headers: record.headers }, undefined, routes);
      if (!result.ok || result.message.kind !== 'snapshot') throw new Error('snapshot not decoded');
      if (!store.apply(result.message.snapshot)) throw new Error('not applied');
    });
  };
  // Interleaved, each a version that changes every route.
  const sliced: Blocked[] = [await inSlices(1)];
  const blocking: Blocked[] = [];
  for (let version = 2; version < 8; version += 2) {
    blocking.push(await inOneGo(version));
    sliced.push(await inSlices(version + 1));
  }
  const worst = (runs: Blocked[]): Blocked => ({
    longestBlockCpuMs: Math.max(...runs.map((run) => run.longestBlockCpuMs)),
    longestBlockMs: Math.max(...runs.map((run) => run.longestBlockMs)),
    cpuMs: median(runs.map((run) => run.cpuMs)),
    wallMs: median(runs.map((run) => run.wallMs)),
  });
  return {
    first_version: reported(sliced[0]!),
    every_route_changed: { ...reported(worst(sliced.slice(1))), runs: sliced.length - 1 },
    apply_turns_given_back: turns,
    in_one_go_every_route_changed: { ...reported(worst(blocking)), runs: blocking.length },
  };
}

const gateway = await startTestGateway();
try {
  const { store } = gateway;
  // Warm the code paths (JIT, module state) on another tenant first.
  store.apply(
    buildSnapshot({
      subdomain: 'warm-up',
      origins: [{ ...origins[0]!, id: randomUUID() }],
      routes: [{ origin_id: null, path_pattern: '/warm' }],
    }),
  );
  const first = snapshotAt(1);
  const start = settled();
  const firstCpu = cpuMs(() => store.apply(first));
  const applied = settled();
  const versionOnly: number[] = [];
  for (let v = 2; v <= 1 + VERSIONS; v++) {
    const snapshot = snapshotAt(v);
    versionOnly.push(cpuMs(() => store.apply(snapshot)));
  }
  const rulesChanged: number[] = [];
  for (let v = 2 + VERSIONS; v <= 1 + 2 * VERSIONS; v++) {
    const snapshot = snapshotAt(v, v);
    rulesChanged.push(cpuMs(() => store.apply(snapshot)));
  }
  const end = settled();
  const header_heavy = measureHeavyTenant(store, 'header-heavy', headerHeavyRoute);
  const ip_rule_heavy = measureHeavyTenant(store, 'ip-rule-heavy', ipRuleHeavyRoute);
  const header_heavy_in_slices = await measureSlicedApply(store, 'header-heavy', headerHeavyRoute);
  const ip_rule_heavy_in_slices = await measureSlicedApply(store, 'ip-rule-heavy', ipRuleHeavyRoute);
  console.log(
    JSON.stringify({
      load_average: os.loadavg().map((load) => Number(load.toFixed(2))),
      first_apply_cpu_ms: Math.round(firstCpu),
      first_apply_heap_mb: mb(applied.heapUsed - start.heapUsed),
      version_only_cpu_ms_median: Math.round(median(versionOnly)),
      rules_changed_cpu_ms_median: Math.round(median(rulesChanged)),
      [`after_${2 * VERSIONS}_versions_heap_mb`]: mb(end.heapUsed - start.heapUsed),
      [`after_${2 * VERSIONS}_versions_rss_mb`]: mb(end.rss - start.rss),
      at_snapshot_bound: { header_heavy, ip_rule_heavy },
      at_snapshot_bound_in_slices: {
        header_heavy: header_heavy_in_slices,
        ip_rule_heavy: ip_rule_heavy_in_slices,
      },
    }),
  );
} finally {
  await gateway.close();
}
