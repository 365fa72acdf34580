import { randomUUID } from 'node:crypto';
import { collectGarbage } from '@vantageedge/shared/testing/live-memory';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { type OpenWebSocket, openWebSocket, roundTrip } from '../testing/open-websockets.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { startWebSocketOrigin, type WebSocketOrigin } from '../testing/websocket-origins.js';

/**
 * An open WebSocket outlives its tenant's config versions: it must not keep the compiled version it was
 * admitted under. It kept it whole (its exchange, and the handshake's closures, held it until the
 * connection ended): a tenant admin opening one WebSocket per config change pinned ≈ 8 KB per route per
 * version, gigabytes within the tenant's WebSocket limit — every tenant of the replica down with it.
 */
const ROUTES = 100;
const VERSIONS = 6;
const SUBDOMAIN = 'ws-versions';

let gateway: TestGateway;
let echo: WebSocketOrigin;

beforeAll(async () => {
  echo = await startWebSocketOrigin();
  gateway = await startTestGateway();
});

afterAll(async () => {
  await gateway?.close();
  await echo?.close();
});

/** How many of `versions` are still alive once garbage is collected (in a turn of their own). */
async function alive(versions: Array<WeakRef<object>>): Promise<number> {
  await new Promise((resolve) => setImmediate(resolve));
  collectGarbage();
  await new Promise((resolve) => setImmediate(resolve));
  collectGarbage();
  return versions.filter((version) => version.deref() !== undefined).length;
}

describe('open WebSockets and the config versions after them', () => {
  it('keep none of the versions they were admitted under; their lines still name tenant and route', async () => {
    const tenantId = randomUUID();
    const originId = randomUUID();
    const routeIds = Array.from({ length: ROUTES }, () => randomUUID());
    const versions: Array<WeakRef<object>> = [];
    const open: OpenWebSocket[] = [];
    for (let version = 1; version <= VERSIONS; version++) {
      gateway.store.apply(
        buildSnapshot({
          tenantId,
          version,
          subdomain: SUBDOMAIN,
          origins: [{ id: originId, targets: [echo.url] }],
          routes: routeIds.map((id, i) => ({
            id,
            origin_id: originId,
            path_pattern: `/r${i}/*`,
            request_headers: { set: { 'x-version': `v${version}-route-${i}` } },
          })),
        }),
      );
      versions.push(new WeakRef(gateway.store.get(tenantId)!));
      open.push(await openWebSocket(gateway, '/r0/ws', { host: `${SUBDOMAIN}.localhost` }));
    }
    for (const { socket } of open) expect(await roundTrip(socket, 'still here')).toBe('still here');

    // The version in force, and at most one more a moment behind.
    expect(await alive(versions)).toBeLessThanOrEqual(2);

    const closed = open.map(({ closed }) => closed);
    for (const { socket } of open) socket.close(1000);
    await Promise.all(closed);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const lines = gateway.logLines.filter((line) => line['status'] === 101);
    expect(lines).toHaveLength(VERSIONS);
    for (const line of lines) expect(line).toMatchObject({ tenant_id: tenantId, route_id: routeIds[0] });
  }, 60_000);
});
