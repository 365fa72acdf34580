import { randomUUID } from 'node:crypto';
import { hashApiKey } from '@vantageedge/shared/domain/api-key-hash';
import { eventually } from '@vantageedge/shared/snapshot-bus/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, TEST_PEPPER, type TestGateway } from '../testing/gateway-harness.js';
import {
  admissionClosures,
  type OpenWebSocket,
  openWebSocket,
  roundTrip,
} from '../testing/open-websockets.js';
import { within } from '../testing/raw-connections.js';
import { buildSnapshot, type TestRoute } from '../testing/snapshots.js';
import { startWebSocketOrigin, type WebSocketOrigin } from '../testing/websocket-origins.js';

/**
 * An open WebSocket lives only as long as what admitted it: a snapshot that revokes its API key,
 * removes its route or tenant, points its route at another origin or gives its host to another tenant
 * closes it (1008 when the caller's credentials no longer hold, 1001 when what it talked to is gone
 * from here). A snapshot that keeps all of that, or another tenant's snapshot, leaves it open.
 */
const KEY = 've_live_withdrawn_key_00000000000000000000';
const OTHER_KEY = 've_live_withdrawn_key_11111111111111111111';

let gateway: TestGateway;
let echo: WebSocketOrigin;
let other: WebSocketOrigin;

/** Upgrades the echo origin holds until the test lets them switch (none unless a test sets it). */
let holdUpgrade: ((done: () => void) => void) | undefined;

/** A `ws` origin that says its name on connect and echoes every message. */
function startEcho(name: string): Promise<WebSocketOrigin> {
  return startWebSocketOrigin({
    name,
    verifyClient: (_info, accept) => {
      if (holdUpgrade === undefined) accept(true);
      else holdUpgrade(() => accept(true));
    },
  });
}

/** One tenant whose snapshots a test changes version by version. */
class TestTenant {
  readonly id = randomUUID();
  readonly originId = randomUUID();
  readonly otherOriginId = randomUUID();
  readonly routeId = randomUUID();
  readonly keyId = randomUUID();
  #version = 1;

  /** `on`: the gateway whose store the snapshots go to (the suite's unless a test starts its own). */
  constructor(
    readonly subdomain: string,
    readonly on: () => TestGateway = () => gateway,
  ) {}

  /** Applies the tenant's next version: one keyed route to the echo origin unless told otherwise. */
  apply(
    changes: {
      keys?: Array<{ id: string; key: string; expires_at?: string | null }>;
      route?: Partial<TestRoute> | null;
      customDomains?: Parameters<typeof buildSnapshot>[0]['customDomains'];
      subdomain?: string;
      settings?: Record<string, unknown>;
    } = {},
  ): void {
    const route: TestRoute = {
      id: this.routeId,
      origin_id: this.originId,
      path_pattern: '/live/*',
      auth_mode: 'apikey_required',
      ...changes.route,
    };
    this.on().store.apply(
      buildSnapshot({
        tenantId: this.id,
        version: this.#version++,
        subdomain: changes.subdomain ?? this.subdomain,
        ...(changes.settings === undefined ? {} : { settings: changes.settings }),
        customDomains: changes.customDomains ?? [],
        origins: [
          { id: this.originId, targets: [echo.url] },
          { id: this.otherOriginId, targets: [other.url] },
        ],
        routes: changes.route === null ? [] : [route],
        apiKeys: (changes.keys ?? [{ id: this.keyId, key: KEY }]).map((key) => ({
          id: key.id,
          key_hash: hashApiKey(TEST_PEPPER, key.key),
          expires_at: key.expires_at ?? null,
        })),
      }),
    );
  }
}

/** A WebSocket through the gateway, once the origin said hello (`page`: the Origin a browser sends). */
function connect(
  host: string,
  key = KEY,
  path = '/live/room',
  through = gateway,
  page?: string,
): Promise<OpenWebSocket> {
  return openWebSocket(through, path, {
    host,
    'x-api-key': key,
    ...(page === undefined ? {} : { origin: page }),
  });
}

/** The test client's own addresses (the gateway sees it on loopback). */
const LOOPBACK = ['127.0.0.0/8', '::1/128'];

const closures = (tenantId: string, reason: string) => admissionClosures(gateway, tenantId, reason);

beforeAll(async () => {
  [echo, other] = await Promise.all([startEcho('echo'), startEcho('other')]);
  gateway = await startTestGateway({ GATEWAY_WEBSOCKET_IDLE_TIMEOUT_SECONDS: '0' });
});

afterAll(async () => {
  await gateway?.close();
  await Promise.all([echo?.close(), other?.close()]);
});

describe('open WebSockets after a snapshot withdraws what admitted them', () => {
  it('closes the WebSocket of a key the next snapshot revokes with 1008, counted and logged', async () => {
    const tenant = new TestTenant(`ws-revoke-${randomUUID().slice(0, 8)}`);
    tenant.apply();
    const open = await connect(`${tenant.subdomain}.localhost`);
    expect(await roundTrip(open.socket, 'before')).toBe('before');

    tenant.apply({ keys: [] });

    expect(await open.closed).toEqual({ code: 1008, reason: 'api key revoked' });
    expect(await closures(tenant.id, 'key_revoked')).toBe(1);
    await eventually('the closure is logged', () =>
      gateway.logLines.some(
        (line) =>
          line['message'] === 'websocket closed' &&
          line['tenant_id'] === tenant.id &&
          line['reason'] === 'key_revoked' &&
          line['route_id'] === tenant.routeId,
      ),
    );
  });

  it('closes a WebSocket its origin switched after a snapshot revoked its key during the upgrade', async () => {
    const tenant = new TestTenant(`ws-pending-${randomUUID().slice(0, 8)}`);
    tenant.apply();
    let switchNow!: () => void;
    const held = new Promise<void>((resolve) => {
      holdUpgrade = (done) => {
        switchNow = done;
        resolve();
      };
    });
    try {
      const opening = connect(`${tenant.subdomain}.localhost`);
      await held;
      tenant.apply({ keys: [] });
      switchNow();
      const open = await opening;
      expect(await open.closed).toEqual({ code: 1008, reason: 'api key revoked' });
    } finally {
      holdUpgrade = undefined;
    }
  });

  it('closes the WebSocket of a key that has expired by the next snapshot with 1008', async () => {
    const tenant = new TestTenant(`ws-expire-${randomUUID().slice(0, 8)}`);
    tenant.apply({ keys: [{ id: tenant.keyId, key: KEY, expires_at: '2999-01-01T00:00:00.000Z' }] });
    const open = await connect(`${tenant.subdomain}.localhost`);
    tenant.apply({ keys: [{ id: tenant.keyId, key: KEY, expires_at: '2000-01-01T00:00:00.000Z' }] });
    expect(await open.closed).toEqual({ code: 1008, reason: 'api key expired' });
  });

  // Snapshots no longer carry a key once it has expired: its absence after its expiry is no revocation.
  it('closes the WebSocket of a key that expired and left the next snapshot as expired, not revoked', async () => {
    const tenant = new TestTenant(`ws-expired-gone-${randomUUID().slice(0, 8)}`);
    const expiresAt = Date.now() + 1500;
    tenant.apply({ keys: [{ id: tenant.keyId, key: KEY, expires_at: new Date(expiresAt).toISOString() }] });
    const open = await connect(`${tenant.subdomain}.localhost`);
    await new Promise((resolve) => setTimeout(resolve, expiresAt - Date.now() + 50));
    tenant.apply({ keys: [] });
    // Closed at its expiry (websocket-credential-expiry.int.test.ts), never as a revocation.
    expect(await open.closed).toEqual({ code: 1008, reason: 'credentials expired' });
    expect(await closures(tenant.id, 'credentials_expired')).toBe(1);
    expect(await closures(tenant.id, 'key_revoked')).toBe(0);
  });

  it('leaves open a WebSocket whose key, route and origin the next snapshot keeps', async () => {
    const tenant = new TestTenant(`ws-keep-${randomUUID().slice(0, 8)}`);
    tenant.apply();
    const open = await connect(`${tenant.subdomain}.localhost`);
    // Another key revoked, the route's pattern and policies changed: the same route, the same origin.
    tenant.apply({
      keys: [
        { id: tenant.keyId, key: KEY },
        { id: randomUUID(), key: OTHER_KEY },
      ],
    });
    tenant.apply({
      route: { path_pattern: '/live/**', request_headers: { set: { 'x-version': '3' } } },
    });
    expect(await roundTrip(open.socket, 'still here')).toBe('still here');
    expect(await closures(tenant.id, 'key_revoked')).toBe(0);
    open.socket.close();
  });

  it('leaves open every WebSocket of a tenant when another tenant’s snapshot changes', async () => {
    const kept = new TestTenant(`ws-kept-${randomUUID().slice(0, 8)}`);
    const changed = new TestTenant(`ws-changed-${randomUUID().slice(0, 8)}`);
    kept.apply();
    changed.apply();
    const keptOpen = await connect(`${kept.subdomain}.localhost`);
    const changedOpen = await connect(`${changed.subdomain}.localhost`);

    changed.apply({ keys: [] });

    expect(await changedOpen.closed).toEqual({ code: 1008, reason: 'api key revoked' });
    expect(await roundTrip(keptOpen.socket, 'unaffected')).toBe('unaffected');
    keptOpen.socket.close();
  });

  it('closes with 1001 when the route is removed or now goes to another origin', async () => {
    const tenant = new TestTenant(`ws-route-${randomUUID().slice(0, 8)}`);
    tenant.apply();
    const removed = await connect(`${tenant.subdomain}.localhost`);
    tenant.apply({ route: null });
    expect(await removed.closed).toEqual({ code: 1001, reason: 'route removed' });

    tenant.apply();
    const moved = await connect(`${tenant.subdomain}.localhost`);
    tenant.apply({ route: { origin_id: tenant.otherOriginId } });
    expect(await moved.closed).toEqual({ code: 1001, reason: 'route origin changed' });
    expect(await closures(tenant.id, 'route_removed')).toBe(1);
    expect(await closures(tenant.id, 'origin_changed')).toBe(1);
  });

  it('closes with 1001 when the route now answers itself (maintenance mode, a redirect), its origin kept', async () => {
    const tenant = new TestTenant(`ws-fixed-${randomUUID().slice(0, 8)}`);
    tenant.apply();
    const inMaintenance = await connect(`${tenant.subdomain}.localhost`);
    tenant.apply({
      route: { fixed_response: { status: 503, headers: { 'retry-after': '60' }, body: 'maintenance' } },
    });
    // As a new upgrade is refused (the route no longer sends anything to its origin), the open one ends.
    await expect(connect(`${tenant.subdomain}.localhost`)).rejects.toThrow('status 503');
    expect(
      await within(inMaintenance.closed, 10_000, 'the WebSocket of the route in maintenance closes'),
    ).toEqual({
      code: 1001,
      reason: 'route answers itself',
    });

    tenant.apply();
    const redirected = await connect(`${tenant.subdomain}.localhost`);
    tenant.apply({ route: { redirect: { status: 308, location: 'https://elsewhere.example/' } } });
    expect(await within(redirected.closed, 10_000, 'the WebSocket of the redirected route closes')).toEqual({
      code: 1001,
      reason: 'route answers itself',
    });
    expect(await closures(tenant.id, 'route_answers_itself')).toBe(2);
  });

  it('closes with 1001 when the tenant is removed or its host goes to another tenant', async () => {
    const removedTenant = new TestTenant(`ws-gone-${randomUUID().slice(0, 8)}`);
    removedTenant.apply();
    const removed = await connect(`${removedTenant.subdomain}.localhost`);
    gateway.store.remove(removedTenant.id);
    expect(await removed.closed).toEqual({ code: 1001, reason: 'tenant removed' });

    const domain = `ws-${randomUUID().slice(0, 8)}.example.com`;
    const loser = new TestTenant(`ws-loser-${randomUUID().slice(0, 8)}`);
    const winner = new TestTenant(`ws-winner-${randomUUID().slice(0, 8)}`);
    loser.apply();
    loser.apply({ customDomains: [domain] }); // verified at position 2
    const onDomain = await connect(domain);
    const onSubdomain = await connect(`${loser.subdomain}.localhost`);
    winner.apply();
    winner.apply();
    // Verified at position 1, by a snapshot newer than the loser's claim: the earlier claim takes the
    // host, though only the winner's snapshot changed.
    winner.apply({ customDomains: [{ domain, verified_position: 1 }] });
    expect(await onDomain.closed).toEqual({ code: 1001, reason: 'host moved' });
    expect(await roundTrip(onSubdomain.socket, 'own host')).toBe('own host');
    onSubdomain.socket.close();
  });
});

// A rotation with a grace period gives the old key an expires_at at the grace's end; past it, snapshots
// leave the key out. With expiry not closing WebSockets (`off`), the one that drops it closes them.
describe('open WebSockets of a rotated key, expiry closing none (GATEWAY_WEBSOCKET_CREDENTIAL_GRACE_SECONDS=off)', () => {
  let handshakeOnly: TestGateway;

  beforeAll(async () => {
    handshakeOnly = await startTestGateway({
      GATEWAY_WEBSOCKET_IDLE_TIMEOUT_SECONDS: '0',
      GATEWAY_WEBSOCKET_CREDENTIAL_GRACE_SECONDS: 'off',
    });
  });

  afterAll(async () => {
    await handshakeOnly?.close();
  });

  it('closes the old key’s WebSocket as expired, not revoked, when a snapshot drops it after the grace', async () => {
    const tenant = new TestTenant(`ws-rotated-${randomUUID().slice(0, 8)}`, () => handshakeOnly);
    const replacement = { id: randomUUID(), key: OTHER_KEY };
    tenant.apply();
    const open = await connect(`${tenant.subdomain}.localhost`, KEY, '/live/room', handshakeOnly);

    const graceEndsAt = Date.now() + 300;
    tenant.apply({
      keys: [{ id: tenant.keyId, key: KEY, expires_at: new Date(graceEndsAt).toISOString() }, replacement],
    });
    expect(await roundTrip(open.socket, 'in the grace')).toBe('in the grace');
    await new Promise((resolve) => setTimeout(resolve, graceEndsAt - Date.now() + 50));
    tenant.apply({ keys: [replacement] });

    expect(await open.closed).toEqual({ code: 1008, reason: 'api key expired' });
    expect(await admissionClosures(handshakeOnly, tenant.id, 'key_expired')).toBe(1);
    expect(await admissionClosures(handshakeOnly, tenant.id, 'key_revoked')).toBe(0);
  });
});

describe('open WebSockets after a snapshot tightens who may connect from where', () => {
  it("closes with 1008 when the route's IP rules now deny the client's address, counted", async () => {
    const tenant = new TestTenant(`ws-ip-route-${randomUUID().slice(0, 8)}`);
    tenant.apply();
    const open = await connect(`${tenant.subdomain}.localhost`);

    tenant.apply({ route: { ip_rules: { allow: [], deny: LOOPBACK } } });

    expect(await open.closed).toEqual({ code: 1008, reason: 'address denied' });
    expect(await closures(tenant.id, 'ip_denied')).toBe(1);
  });

  it('closes with 1008 when the tenant-wide IP rules now admit only other addresses', async () => {
    const tenant = new TestTenant(`ws-ip-tenant-${randomUUID().slice(0, 8)}`);
    tenant.apply();
    const open = await connect(`${tenant.subdomain}.localhost`);

    tenant.apply({ settings: { ip_rules: { allow: ['203.0.113.0/24'], deny: [] } } });

    expect(await open.closed).toEqual({ code: 1008, reason: 'address denied' });
  });

  it("closes with 1008 when the route's CORS policy no longer allows the page that opened it", async () => {
    const tenant = new TestTenant(`ws-cors-${randomUUID().slice(0, 8)}`);
    const cors = (allow_origins: string[]) => ({
      route: { cors: { allow_origins, allow_credentials: true } },
    });
    tenant.apply(cors(['https://app.example.com', 'https://partner.example.net']));
    const host = `${tenant.subdomain}.localhost`;
    const fromPartner = await connect(host, KEY, '/live/room', gateway, 'https://partner.example.net');
    const fromApp = await connect(host, KEY, '/live/room', gateway, 'https://app.example.com');
    const notBrowser = await connect(host);

    tenant.apply(cors(['https://app.example.com']));

    expect(await fromPartner.closed).toEqual({ code: 1008, reason: 'origin not allowed' });
    expect(await closures(tenant.id, 'cors_not_allowed')).toBe(1);
    expect(await roundTrip(fromApp.socket, 'still allowed')).toBe('still allowed');
    expect(await roundTrip(notBrowser.socket, 'no page')).toBe('no page');
    fromApp.socket.close();
    notBrowser.socket.close();
  });

  it('leaves open a WebSocket whose address and page the new rules still admit', async () => {
    const tenant = new TestTenant(`ws-ip-keep-${randomUUID().slice(0, 8)}`);
    tenant.apply();
    const open = await connect(`${tenant.subdomain}.localhost`);

    tenant.apply({ route: { ip_rules: { allow: [], deny: ['203.0.113.0/24'] } } });
    tenant.apply({ settings: { ip_rules: { allow: [...LOOPBACK, '198.51.100.0/24'], deny: [] } } });

    expect(await roundTrip(open.socket, 'still here')).toBe('still here');
    expect(await closures(tenant.id, 'ip_denied')).toBe(0);
    open.socket.close();
  });
});
