import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { removeTenantSeries } from '../observability/bound-metrics.js';
import { WebSocketMetrics } from './websocket-metrics.js';

const lines = async (registry: Registry, tenant: string) =>
  (await registry.metrics()).split('\n').filter((l) => l.includes(`tenant="${tenant}"`));

describe('WebSocket metrics', () => {
  it('count an origin’s unnamed upgrade statuses by class, the gateway’s own and named ones exactly', async () => {
    const registry = new Registry();
    const metrics = new WebSocketMetrics(registry);
    metrics.upgrade('t1', 101, undefined);
    metrics.upgrade('t1', 403, undefined);
    metrics.upgrade('t1', 460, undefined);
    metrics.upgrade('t1', 599, undefined);
    metrics.upgrade('t1', 429, 'rate_limited');
    expect((await lines(registry, 't1')).sort()).toEqual(
      [
        'vantageedge_gateway_websocket_upgrades_total{tenant="t1",status="101"} 1',
        'vantageedge_gateway_websocket_upgrades_total{tenant="t1",status="403"} 1',
        'vantageedge_gateway_websocket_upgrades_total{tenant="t1",status="429"} 1',
        'vantageedge_gateway_websocket_upgrades_total{tenant="t1",status="4xx"} 1',
        'vantageedge_gateway_websocket_upgrades_total{tenant="t1",status="5xx"} 1',
      ].sort(),
    );
  });

  it('remove a removed tenant’s open-connections series once none is open, never going below zero', async () => {
    const registry = new Registry();
    const metrics = new WebSocketMetrics(registry);
    metrics.opened('idle');
    metrics.closed('idle', false);
    metrics.opened('busy');
    metrics.opened('busy');
    metrics.closed('busy', false);
    metrics.upgrade('busy', 101, undefined);

    // A replaced tenant keeps its series.
    removeTenantSeries(registry, 'busy', () => false);
    expect(await lines(registry, 'busy')).toHaveLength(2);

    removeTenantSeries(registry, 'idle');
    removeTenantSeries(registry, 'busy');
    expect(await lines(registry, 'idle')).toEqual([]);
    expect(await lines(registry, 'busy')).toEqual([
      'vantageedge_gateway_websocket_connections_open{tenant="busy"} 1',
    ]);
    metrics.closed('busy', true);
    expect(await lines(registry, 'busy')).toEqual([]);
  });
});
