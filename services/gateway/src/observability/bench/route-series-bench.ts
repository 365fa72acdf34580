/**
 * bench-route-series: what route-labelled series cost one replica's /metrics, with and without
 * GATEWAY_METRICS_MAX_ROUTE_SERIES. TENANTS × ROUTES routes each answer a 2xx, 4xx and 5xx (three
 * status classes, with upstream latency) and a rate-limit decision; then /metrics is rendered.
 * Reports scrape bytes, lines, render time and retained heap. For docs/deployment.md ("Cardinality").
 * (50 × 1,000 routes unbounded do not render at all: the text passes V8's longest string.)
 *
 *   [BENCH_MAX_ROUTE_SERIES=1000] [BENCH_TENANT_SHARE=0.1] [BENCH_TENANTS=20] [BENCH_ROUTES=500] \
 *   node --expose-gc --import tsx services/gateway/src/observability/bench/route-series-bench.ts
 */
import os from 'node:os';
import { Registry } from 'prom-client';
import { BoundCounter } from '../bound-metrics.js';
import { GatewayMetrics } from '../gateway-metrics.js';

const TENANTS = Number(process.env['BENCH_TENANTS'] ?? 20);
const ROUTES = Number(process.env['BENCH_ROUTES'] ?? 500);
const MAX_ROUTE_SERIES = process.env['BENCH_MAX_ROUTE_SERIES'];
const TENANT_SHARE = Number(process.env['BENCH_TENANT_SHARE'] ?? 0.1);

function heapUsed(): number {
  const { gc } = globalThis as { gc?: () => void };
  gc?.();
  gc?.();
  return process.memoryUsage().heapUsed;
}

async function measure(setting: { name: string; maxRouteSeries?: number; routeSeriesTenantShare?: number }) {
  const heapBefore = heapUsed();
  const registry = new Registry();
  const metrics = new GatewayMetrics(registry, setting);
  const decisions = new BoundCounter({
    name: 'vantageedge_gateway_ratelimit_decisions_total',
    help: 'Rate-limit decisions',
    labelNames: ['tenant', 'route', 'scope', 'outcome'],
    registry,
  });
  for (let t = 0; t < TENANTS; t++) {
    const tenant = `00000000-0000-4000-8000-${String(t).padStart(12, '0')}`;
    for (let r = 0; r < ROUTES; r++) {
      const route = metrics.forRoute(tenant, `${tenant.slice(0, 24)}${String(r).padStart(12, '0')}`);
      for (const status of [200, 404, 502]) route.observe(status, 0.02, 0.01, undefined);
      decisions.series([tenant, route.label, 'route', 'allowed']).inc();
    }
  }
  const started = process.hrtime.bigint();
  const text = await registry.metrics();
  const renderMs = Number(process.hrtime.bigint() - started) / 1e6;
  const heapAfter = heapUsed();
  const result = {
    setting: setting.name,
    routes: TENANTS * ROUTES,
    route_labels: new Set(text.match(/tenant="[^"]*",route="[^"]*"/g)).size,
    lines: text.split('\n').filter((line) => line !== '' && !line.startsWith('#')).length,
    mib: Math.round((Buffer.byteLength(text) / 1024 / 1024) * 10) / 10,
    render_ms: Math.round(renderMs),
    retained_heap_mib: Math.round(((heapAfter - heapBefore) / 1024 / 1024) * 10) / 10,
  };
  return result;
}

async function main(): Promise<void> {
  console.log(JSON.stringify({ tenants: TENANTS, routes_per_tenant: ROUTES, load_average: os.loadavg() }));
  const setting =
    MAX_ROUTE_SERIES === undefined
      ? { name: 'unbounded' }
      : {
          name: `max ${MAX_ROUTE_SERIES}, share ${TENANT_SHARE}`,
          maxRouteSeries: Number(MAX_ROUTE_SERIES),
          routeSeriesTenantShare: TENANT_SHARE,
        };
  console.log(JSON.stringify(await measure(setting)));
  console.log(JSON.stringify({ load_average_after: os.loadavg() }));
}

await main();
