/**
 * What one tenant at the default limits costs a gateway replica: 1,000 routes (TENANT_MAX_ROUTES)
 * under 200 allow + 200 deny tenant-wide IPv6 /64s (the most `settings.ip_rules` holds), 10 origins ×
 * 100 targets (TENANT_MAX_TARGETS) with consistent hashing. Through the full request pipeline (every
 * route policy, in-memory stores), in this process, no Kafka. Measured: CPU (user + system) and heap
 * after GC of the first apply; CPU of 10 versions where only the version changed and of 10 whose IP
 * rules changed; heap and RSS growth after those 20 versions. Prints JSON. Figures for docs/capacity.md.
 *
 * Run: make bench-tenant-limits
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { startTestGateway } from '../../testing/gateway-harness.js';
import { buildSnapshot } from '../../testing/snapshots.js';

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
  console.log(
    JSON.stringify({
      load_average: os.loadavg().map((load) => Number(load.toFixed(2))),
      first_apply_cpu_ms: Math.round(firstCpu),
      first_apply_heap_mb: mb(applied.heapUsed - start.heapUsed),
      version_only_cpu_ms_median: Math.round(median(versionOnly)),
      rules_changed_cpu_ms_median: Math.round(median(rulesChanged)),
      [`after_${2 * VERSIONS}_versions_heap_mb`]: mb(end.heapUsed - start.heapUsed),
      [`after_${2 * VERSIONS}_versions_rss_mb`]: mb(end.rss - start.rss),
    }),
  );
} finally {
  await gateway.close();
}
