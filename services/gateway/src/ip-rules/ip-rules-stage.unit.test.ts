import { randomUUID } from 'node:crypto';
import type { TenantSnapshot } from '@vantageedge/shared/domain/gateway-config';
import { AddressMatcher } from '@vantageedge/shared/gateway-policies/address-matcher';
import { describe, expect, it, vi } from 'vitest';
import { GatewayConfigStore } from '../config/gateway-config-store.js';
import type { GatewayExchange } from '../pipeline/exchange.js';
import type { RouteStage } from '../pipeline/stage.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { createIpRulesPolicy } from './ip-rules-stage.js';

/**
 * Regression: the tenant-wide rules were compiled again for every route, on every snapshot version —
 * 1,000 routes and 400 IPv6 rules cost ≈1 s of CPU per version on every replica (in the Kafka batch
 * handler) and ≈110 MB of native memory. They are compiled once per distinct rule set and shared: by
 * every route of the tenant that has no rules of its own, and by the next version while they are equal.
 */
describe('IP rules stage compilation', () => {
  const tenantId = randomUUID();
  const originId = randomUUID();
  const hex = (n: number) => n.toString(16);
  const tenantRules = {
    allow: Array.from({ length: 200 }, (_, i) => `2001:db8:${hex(i)}:${hex(i * 7)}::/64`),
    deny: Array.from({ length: 200 }, (_, i) => `2001:db8:f${hex(i)}:${hex(i * 3)}::/64`),
  };
  const ownRules = { allow: ['198.51.100.0/24'], deny: [] };

  const snapshot = (version: number, settings = tenantRules): TenantSnapshot =>
    // A fresh object graph per version, as the config plane decodes each message.
    structuredClone(
      buildSnapshot({
        tenantId,
        version,
        subdomain: 'ipshare',
        origins: [{ id: originId, targets: ['http://127.0.0.1:1'] }],
        routes: [
          ...Array.from({ length: 1000 }, (_, i) => ({ origin_id: originId, path_pattern: `/r${i}/*` })),
          { origin_id: originId, path_pattern: '/own/*', ip_rules: ownRules },
        ],
        settings: { ip_rules: settings },
      }),
    );

  const newStore = () => {
    const store = new GatewayConfigStore({
      baseDomains: ['localhost'],
      createUpstreamSet: () => ({ acquire: () => undefined, close: async () => {} }),
    });
    store.setPipeline({ policies: [createIpRulesPolicy()] });
    return store;
  };

  const ipStages = (store: GatewayConfigStore) => {
    const routes = store.get(tenantId)!.routes;
    const stageOf = (pattern: string) =>
      routes
        .find((route) => route.config.path_pattern === pattern)!
        .stages.all.find((s) => s.name === 'ip_rules');
    const tenantWide = routes
      .filter((route) => route.config.path_pattern !== '/own/*')
      .map((route) => route.stages.all.find((s) => s.name === 'ip_rules'));
    return { tenantWide, own: stageOf('/own/*')! };
  };

  const verdict = (stage: RouteStage, clientIp: string): number | 'continue' => {
    let status: number | undefined;
    const res = {
      headersSent: false,
      setHeader() {},
      writeHead(code: number) {
        status = code;
      },
      end() {},
    };
    const result = stage.onRequest!({ clientIp, res } as unknown as GatewayExchange);
    return result === 'continue' ? 'continue' : status!;
  };

  it("compiles the tenant's 400 IPv6 rules once for its 1,000 routes: they share one stage", () => {
    const store = newStore();
    store.apply(snapshot(1));
    const { tenantWide, own } = ipStages(store);
    expect(tenantWide).toHaveLength(1000);
    expect(tenantWide[0]).toBeDefined();
    expect(new Set(tenantWide).size).toBe(1);
    // A route with rules of its own compiles its own.
    expect(own).not.toBe(tenantWide[0]);

    const shared = tenantWide[0]!;
    expect(verdict(shared, '2001:db8:5:23::1')).toBe('continue'); // allowed /64
    expect(verdict(shared, '2001:db8:f5:f::1')).toBe(403); // denied /64
    expect(verdict(shared, '2001:db8:5:24::1')).toBe(403); // not in the allow list
    expect(verdict(own, '198.51.100.7')).toBe('continue');
    expect(verdict(own, '2001:db8:5:23::1')).toBe(403);
  });

  it('reuses the compiled rules in the next snapshot version while they are unchanged', () => {
    const store = newStore();
    store.apply(snapshot(1));
    const first = ipStages(store);
    store.apply(snapshot(2));
    const second = ipStages(store);
    expect(second.tenantWide[0]).toBe(first.tenantWide[0]);
    expect(second.own).toBe(first.own);

    // Changed tenant rules: a new stage for the tenant's routes, the route's own rules still reused.
    store.apply(snapshot(3, { allow: tenantRules.allow.slice(1), deny: tenantRules.deny }));
    const third = ipStages(store);
    expect(third.tenantWide[0]).not.toBe(first.tenantWide[0]);
    expect(new Set(third.tenantWide).size).toBe(1);
    expect(third.own).toBe(first.own);
    expect(verdict(third.tenantWide[0]!, '2001:db8:0:0::1')).toBe(403); // its allow range was dropped
    expect(verdict(third.tenantWide[0]!, '2001:db8:1:7::1')).toBe('continue');
  });

  it("bounds the client addresses a tenant's 1,000 rule sets remember together", () => {
    const store = newStore();
    const ROUTES = 1000;
    const ADDRESSES = 256;
    store.apply(
      buildSnapshot({
        tenantId,
        subdomain: 'ipshare',
        origins: [{ id: originId, targets: ['http://127.0.0.1:1'] }],
        routes: Array.from({ length: ROUTES }, (_, i) => ({
          origin_id: originId,
          path_pattern: `/r${i}/*`,
          // Deny lists only: deciding an address is one lookup.
          ip_rules: { allow: [], deny: [`10.${i >> 8}.${i & 255}.0/24`] },
        })),
      }),
    );
    const stages = store.get(tenantId)!.routes.map((route) => route.stages.all[0]!);
    expect(new Set(stages).size).toBe(ROUTES);
    const address = (route: number, n: number) => `2001:db8:${hex(route)}:${hex(n)}::1`;
    const requests = stages.flatMap((stage, i) =>
      Array.from({ length: ADDRESSES }, (_, n) => ({ stage, address: address(i, n) })),
    );
    const admitted = (sent: typeof requests) =>
      sent.filter(({ stage, address }) => verdict(stage, address) === 'continue').length;
    expect(admitted(requests)).toBe(requests.length);
    // Addresses still remembered: those the same requests, the latest first, do not decide again.
    const decided = vi.spyOn(AddressMatcher.prototype, 'has');
    expect(admitted(requests.toReversed())).toBe(requests.length);
    const remembered = requests.length - decided.mock.calls.length;
    decided.mockRestore();
    expect(remembered).toBeGreaterThan(0);
    expect(remembered).toBeLessThanOrEqual(4096);
  });
});
