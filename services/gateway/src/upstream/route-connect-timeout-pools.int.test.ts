import { randomUUID } from 'node:crypto';
import {
  type StalledConnectTarget,
  startStalledConnectTarget,
} from '@vantageedge/shared/testing/stalled-connect-target';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { within } from '../testing/raw-connections.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * Regression test: a target keeps a pool for each of at most four connect_ms values, and an origin that
 * did not change keeps its targets across snapshots. The pools stayed with the values routes had used
 * before, so a route whose connect_ms was changed a few times (the control plane allows it: the origin's
 * routes still use at most four values) got the default pool, and waited the origin's connect timeout
 * (10 s) instead of its own.
 */
const HOST = 'connect-pools.localhost';
/** Far below the origin's connect timeout (10 s), far above the routes' connect_ms. */
const ROUTE_TIMEOUT_BOUND_MS = 4_000;

let gateway: TestGateway;
let stalled: StalledConnectTarget;
const tenantId = randomUUID();
const originId = randomUUID();
const routeId = randomUUID();

function withConnectMs(version: number, connectMs: number) {
  return buildSnapshot({
    tenantId,
    version,
    subdomain: 'connect-pools',
    origins: [
      {
        id: originId,
        targets: [stalled.url],
        timeout_seconds: 30,
        circuit_breaker: { enabled: false },
        health_check: { active: { enabled: false }, passive: { enabled: false } },
      },
    ],
    routes: [{ id: routeId, origin_id: originId, path_pattern: '/*', timeouts: { connect_ms: connectMs } }],
  });
}

beforeAll(async () => {
  stalled = await startStalledConnectTarget();
  gateway = await startTestGateway();
});

afterAll(async () => {
  await gateway?.close();
  await stalled?.close();
});

describe("a route's connect_ms changed several times on an unchanged origin", () => {
  it('is applied each time, the values no route uses any more giving their pools up', async () => {
    const statuses: number[] = [];
    for (const [index, connectMs] of [100, 150, 200, 250, 300, 350].entries()) {
      gateway.store.apply(withConnectMs(index + 1, connectMs));
      const answer = await within(
        send(gateway, HOST, `/after-${connectMs}`),
        ROUTE_TIMEOUT_BOUND_MS,
        `the answer with connect_ms ${connectMs}`,
      );
      statuses.push(answer.status);
    }
    expect(statuses).toEqual(Array(6).fill(504));
  });
});
