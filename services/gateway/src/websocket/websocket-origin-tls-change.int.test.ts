import { randomUUID } from 'node:crypto';
import {
  createTestCa,
  issueTestCertificate,
  type TestCa,
} from '@vantageedge/shared/testing/test-certificates';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { admissionClosures, openWebSocket, roundTrip } from '../testing/open-websockets.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { startWebSocketOrigin, type WebSocketOrigin } from '../testing/websocket-origins.js';

/**
 * An open WebSocket to an https (wss) target was connected, and its origin's certificate verified (or
 * not), under its origin's TLS settings of then. A snapshot that changes them — verification turned on,
 * another trust store, server name or client certificate — closes it (1001 `origin tls changed`): every
 * message after the change would still go over a connection the new settings never accepted. A
 * reconnect is verified under the new settings. A change of the origin that leaves its TLS settings as
 * they were (a timeout, a target added) leaves it open.
 */
let gateway: TestGateway;
let issuer: TestCa;
let otherCa: TestCa;
let secureEcho: WebSocketOrigin;

beforeAll(async () => {
  [issuer, otherCa] = await Promise.all([createTestCa('Origin CA'), createTestCa('Another CA')]);
  const certificate = await issueTestCertificate(issuer, {
    dnsNames: ['origin.test'],
    ipAddresses: ['127.0.0.1'],
  });
  secureEcho = await startWebSocketOrigin({ name: 'secure', certificate });
  gateway = await startTestGateway({ GATEWAY_WEBSOCKET_IDLE_TIMEOUT_SECONDS: '0' });
});

afterAll(async () => {
  await gateway?.close();
  await secureEcho?.close();
});

/** One tenant with a public WebSocket route to the wss origin, whose origin each version configures. */
class SecureTenant {
  readonly id = randomUUID();
  readonly originId = randomUUID();
  readonly routeId = randomUUID();
  readonly subdomain = `wss-${randomUUID().slice(0, 8)}`;
  #version = 1;

  apply(origin: { tls: Record<string, unknown>; timeout_seconds?: number }): void {
    gateway.store.apply(
      buildSnapshot({
        tenantId: this.id,
        version: this.#version++,
        subdomain: this.subdomain,
        origins: [{ id: this.originId, targets: [secureEcho.url], ...origin }],
        routes: [{ id: this.routeId, origin_id: this.originId, path_pattern: '/live/*' }],
      }),
    );
  }

  connect() {
    return openWebSocket(gateway, '/live/room', { host: `${this.subdomain}.localhost` });
  }
}

describe('open wss WebSockets after a snapshot changes their origin’s TLS settings', () => {
  it('closes with 1001 once verification is turned on, and the reconnect is verified under the new settings', async () => {
    const tenant = new SecureTenant();
    tenant.apply({ tls: { verify: false } });
    const open = await tenant.connect();
    expect(await roundTrip(open.socket, 'unverified')).toBe('unverified');

    tenant.apply({ tls: { verify: true, ca_certificates: otherCa.certificatePem } });

    expect(await open.closed).toEqual({ code: 1001, reason: 'origin tls changed' });
    expect(await admissionClosures(gateway, tenant.id, 'origin_tls_changed')).toBe(1);
    await expect(tenant.connect()).rejects.toThrow('status 502');
  });

  it('closes with 1001 when the origin trusts another CA, though the new one verifies the origin too', async () => {
    const tenant = new SecureTenant();
    tenant.apply({
      tls: { verify: true, ca_certificates: `${issuer.certificatePem}\n${otherCa.certificatePem}` },
    });
    const open = await tenant.connect();

    tenant.apply({ tls: { verify: true, ca_certificates: issuer.certificatePem } });

    expect(await open.closed).toEqual({ code: 1001, reason: 'origin tls changed' });
    const reconnected = await tenant.connect();
    expect(await roundTrip(reconnected.socket, 'verified again')).toBe('verified again');
    reconnected.socket.close();
  });

  it('leaves it open when the origin changes but its TLS settings do not', async () => {
    const tenant = new SecureTenant();
    const tls = { verify: true, ca_certificates: issuer.certificatePem, server_name: 'origin.test' };
    tenant.apply({ tls });
    const open = await tenant.connect();

    tenant.apply({ tls, timeout_seconds: 7 });

    expect(await roundTrip(open.socket, 'still here')).toBe('still here');
    expect(await admissionClosures(gateway, tenant.id, 'origin_tls_changed')).toBe(0);
    open.socket.close();
  });
});
