import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';

/**
 * Regression tests: the admin listener (/status lists every tenant's hosts and versions, /metrics
 * every tenant's traffic) bound the same interface as tenant traffic, 0.0.0.0 by default, with no way to
 * protect /status. Now it binds GATEWAY_ADMIN_HOST (127.0.0.1 by default), and GATEWAY_ADMIN_TOKEN makes
 * /status and /metrics require a bearer token (/metrics stayed open with it at first).
 */
let gateway: TestGateway | undefined;

afterEach(async () => {
  await gateway?.close();
  gateway = undefined;
});

const TOKEN = 'admin-token-0123456789abcdef';

describe('the admin listener', () => {
  it('binds 127.0.0.1 by default even when tenant traffic listens on every interface', async () => {
    gateway = await startTestGateway({ GATEWAY_HOST: '0.0.0.0' });
    expect((gateway.gateway.trafficServer.address() as AddressInfo).address).toBe('0.0.0.0');
    expect((gateway.gateway.adminServer.address() as AddressInfo).address).toBe('127.0.0.1');
  });

  it('with GATEWAY_ADMIN_TOKEN, /status and /metrics need the bearer token; probes stay open', async () => {
    gateway = await startTestGateway({ GATEWAY_ADMIN_TOKEN: TOKEN });
    const status = (authorization?: string) =>
      fetch(`${gateway!.adminUrl}/status`, authorization ? { headers: { authorization } } : {});

    const missing = await status();
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toContain('Bearer');
    expect(await missing.json()).toEqual({
      error: {
        code: 'unauthorized',
        message: 'this endpoint needs the admin token (Authorization: Bearer …)',
        details: [{ field: 'authorization', issue: 'missing' }],
      },
    });
    for (const wrong of [`Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}`, `Basic ${TOKEN}`]) {
      expect((await status(wrong)).status, wrong).toBe(401);
    }
    const allowed = await status(`Bearer ${TOKEN}`);
    expect(allowed.status).toBe(200);
    expect(await allowed.json()).toMatchObject({ tenants: [] });

    for (const open of ['/healthz', '/readyz']) {
      expect((await fetch(`${gateway.adminUrl}${open}`)).status, open).toBe(200);
    }
  });

  // /metrics labels every tenant's id and route names with their traffic: whoever reaches an admin
  // listener opened beyond loopback must not read it without the token, as for /status.
  it('with GATEWAY_ADMIN_TOKEN, /metrics answers only the bearer token', async () => {
    gateway = await startTestGateway({ GATEWAY_ADMIN_TOKEN: TOKEN });
    const metrics = (authorization?: string) =>
      fetch(`${gateway!.adminUrl}/metrics`, authorization ? { headers: { authorization } } : {});

    const missing = await metrics();
    expect(missing.status).toBe(401);
    const body = await missing.text();
    expect(body).not.toContain('vantageedge_');
    expect(JSON.parse(body)).toMatchObject({
      error: { code: 'unauthorized', details: [{ field: 'authorization', issue: 'missing' }] },
    });
    expect((await metrics(`Bearer ${TOKEN}x`)).status).toBe(401);

    const allowed = await metrics(`Bearer ${TOKEN}`);
    expect(allowed.status).toBe(200);
    expect(await allowed.text()).toContain('vantageedge_gateway_');
  });

  it('without a token /metrics stays open (loopback only by default)', async () => {
    gateway = await startTestGateway();
    expect((await fetch(`${gateway.adminUrl}/metrics`)).status).toBe(200);
  });

  it('is not reachable through the traffic port, whatever the Host or request target names', async () => {
    gateway = await startTestGateway();
    const admin = `127.0.0.1:${gateway.gateway.adminPort}`;
    const attempts = [
      { host: admin, target: '/metrics' },
      { host: admin, target: '/status' },
      { host: admin, target: `http://${admin}/metrics` },
      { host: 'localhost', target: `http://${admin}/status` },
      { host: `localhost:${gateway.gateway.trafficPort}`, target: '/metrics' },
    ];
    for (const { host, target } of attempts) {
      const answer = await send(gateway, host, target);
      expect(answer.status, `${host} ${target}`).toBeGreaterThanOrEqual(400);
      expect(answer.text, `${host} ${target}`).not.toContain('vantageedge_');
      expect(answer.text, `${host} ${target}`).not.toContain('replica_id');
    }
  });

  it('without a token /status stays open (loopback only by default)', async () => {
    gateway = await startTestGateway();
    expect((await fetch(`${gateway.adminUrl}/status`)).status).toBe(200);
  });

  // Regression: the admin listener kept node's defaults, so a client trickling a request head held its
  // connection for 60 to 90 s (node looks for expired heads every 30 s, past a 60 s headers timeout), and
  // an idle keep-alive connection sending blank lines stayed open for ever. The probes answer here.
  it("has a metrics listener's timeouts, not node's defaults", async () => {
    gateway = await startTestGateway();
    const { adminServer } = gateway.gateway;
    expect({
      headersTimeout: adminServer.headersTimeout,
      requestTimeout: adminServer.requestTimeout,
      keepAliveTimeout: adminServer.keepAliveTimeout,
    }).toEqual({ headersTimeout: 5_000, requestTimeout: 10_000, keepAliveTimeout: 5_000 });
  });

  it('a token shorter than 16 characters is refused at start-up, naming the setting', async () => {
    await expect(startTestGateway({ GATEWAY_ADMIN_TOKEN: 'short' })).rejects.toThrow(/GATEWAY_ADMIN_TOKEN/);
  });
});
