import { randomUUID } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type RouteConfig, routeConfig, type TenantSnapshot } from '../domain/gateway-config.js';
import { createInMemorySnapshotBus } from './in-memory-snapshot-bus.js';
import type { SnapshotMessage } from './port.js';
import { RouteValidationCache } from './route-validation-cache.js';
import { eventually, recordSubscription, sampleSnapshot, snapshotMessage } from './testing.js';

/** The route objects zod's routeConfig schema validated (each input once, however often zod runs it). */
function countRouteValidations(): Set<unknown> {
  const validated = new Set<unknown>();
  const run = routeConfig._zod.run;
  vi.spyOn(routeConfig._zod, 'run').mockImplementation(function (this: unknown, payload, context) {
    validated.add(payload.value);
    return run.call(this, payload, context);
  });
  return validated;
}

function nextVersion(snapshot: TenantSnapshot, version: bigint, routes = snapshot.routes): TenantSnapshot {
  return { ...snapshot, version: version.toString(), routes };
}

const routesOf = (message: SnapshotMessage | undefined): readonly RouteConfig[] =>
  message?.kind === 'snapshot' ? message.snapshot.routes : [];

describe('decoding a new version of a tenant whose routes mostly did not change', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('validates only the changed route of 200 and hands the others over as they were', async () => {
    const bus = createInMemorySnapshotBus();
    const subscriber = await recordSubscription(bus);
    const tenantId = randomUUID();
    const v1 = sampleSnapshot(tenantId, 1n, { routes: 200 });
    await bus.publish([snapshotMessage(v1)]);
    await eventually('v1 delivered', () => subscriber.messages.length === 1);

    const validated = countRouteValidations();
    const changed = { ...v1.routes[7]!, path_pattern: '/v2/changed/:id' };
    await bus.publish([snapshotMessage(nextVersion(v1, 2n, v1.routes.with(7, changed)))]);
    await eventually('v2 delivered', () => subscriber.messages.length === 2);

    expect(validated.size).toBe(1);
    const [before, after] = [routesOf(subscriber.messages[0]), routesOf(subscriber.messages[1])];
    expect(after).toHaveLength(200);
    expect(after[7]).toEqual(changed);
    expect(after.filter((route, index) => route === before[index])).toHaveLength(199);
    await bus.close();
  });

  it('validates again a route that changed, moved in the list or came back after a tombstone', async () => {
    const bus = createInMemorySnapshotBus();
    const subscriber = await recordSubscription(bus);
    const tenantId = randomUUID();
    const v1 = sampleSnapshot(tenantId, 1n, { routes: 5 });
    await bus.publish([snapshotMessage(v1)]);
    await eventually('v1 delivered', () => subscriber.messages.length === 1);
    const validated = countRouteValidations();

    // Reordered (found by id, unchanged) and one route's methods changed.
    const reordered = [...v1.routes].reverse().with(0, { ...v1.routes[4]!, methods: ['POST'] });
    await bus.publish([snapshotMessage(nextVersion(v1, 2n, reordered))]);
    await eventually('v2 delivered', () => subscriber.messages.length === 2);
    expect(validated.size).toBe(1);
    expect(routesOf(subscriber.messages[1])).toEqual(reordered);
    expect(routesOf(subscriber.messages[1])[1]).toBe(routesOf(subscriber.messages[0])[3]);

    // A tombstone releases the tenant's routes: the same routes after it are validated again.
    await bus.publish([{ kind: 'tombstone', tenantId, version: 3n }]);
    await eventually('tombstone delivered', () => subscriber.messages.length === 3);
    await bus.publish([snapshotMessage(nextVersion(v1, 4n))]);
    await eventually('v4 delivered', () => subscriber.messages.length === 4);
    expect(validated.size).toBe(6);
    expect(routesOf(subscriber.messages[3])).toEqual(v1.routes);
    await bus.close();
  });

  it('refuses a version whose changed route or other part is invalid, and keeps validating against the last good one', async () => {
    const bus = createInMemorySnapshotBus();
    const subscriber = await recordSubscription(bus);
    const tenantId = randomUUID();
    const v1 = sampleSnapshot(tenantId, 1n, { routes: 3 });
    await bus.publish([snapshotMessage(v1)]);
    await eventually('v1 delivered', () => subscriber.messages.length === 1);

    const badRoute = { ...v1.routes[1]!, auth_mode: 'nobody' } as unknown as RouteConfig;
    await bus.publish([snapshotMessage(nextVersion(v1, 2n, v1.routes.with(1, badRoute)))]);
    const badOrigin = { ...v1, version: '3', origins: [{ ...v1.origins[0]!, id: 'not-a-uuid' }] };
    await bus.publish([snapshotMessage(badOrigin)]);
    await eventually('both refused', () => subscriber.invalid.length === 2);
    expect(subscriber.invalid[0]).toMatch(/^invalid snapshot at routes\.1\.auth_mode: /);
    expect(subscriber.invalid[1]).toMatch(/^invalid snapshot at origins\.0\.id: /);

    await bus.publish([snapshotMessage(nextVersion(v1, 4n))]);
    await eventually('v4 delivered', () => subscriber.messages.length === 2);
    expect(routesOf(subscriber.messages[1])).toEqual(v1.routes);
    expect(subscriber.messages).toHaveLength(2);
    await bus.close();
  });
});

/** `value` with every object's members in PostgreSQL jsonb's order: shorter names first, then by bytes. */
function jsonbOrdered(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(jsonbOrdered);
  if (typeof value !== 'object' || value === null) return value;
  const names = Object.keys(value).sort((a, b) => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0));
  return Object.fromEntries(
    names.map((name) => [name, jsonbOrdered((value as Record<string, unknown>)[name])]),
  );
}

describe('a tenant’s routes as the snapshot store orders their members', () => {
  // Regression: the published snapshot is read back from a jsonb column, whose member order is not the
  // schema's, so no validated route equalled its input and the replica kept both, every route twice.
  it('are kept once, as validated, and still reused by the next version', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const cache = new RouteValidationCache();
    const tenantId = randomUUID();
    const decode = (raw: readonly unknown[]) => {
      const work = cache.validating(tenantId, raw);
      let step = work.next();
      while (!step.done) step = work.next();
      if (!step.value.ok) throw new Error(step.value.message);
      cache.remember(tenantId, raw, step.value.routes);
      return step.value.routes;
    };
    const published = () => sampleSnapshotRoutes.map(jsonbOrdered);
    let first: unknown[] | undefined = published();
    const inputs = first.map((input) => new WeakRef(input as object));
    const routes = decode(first);
    first = undefined;
    // A WeakRef holds its target until the job that made it ends.
    await new Promise((resolve) => setTimeout(resolve, 0));
    gc();
    expect(inputs.filter((input) => input.deref() !== undefined)).toHaveLength(0);
    const again = decode(published());
    expect(again.every((route, index) => route === routes[index])).toBe(true);
  });
});

const sampleSnapshotRoutes = sampleSnapshot(randomUUID(), 1n, { routes: 20 }).routes;
