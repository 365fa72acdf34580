import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { catchAllTenant } from '../testing/raw-connections.js';
import { startWebSocketOrigin, type WebSocketOrigin } from '../testing/websocket-origins.js';

/**
 * One client holds at most GATEWAY_WEBSOCKET_CLIENT_SHARE of its tenant's WebSockets on a replica. Behind
 * a trusted load balancer no per-connection bound applies to a client, and one client address (as the
 * balancer forwarded it) held every one of its tenant's WebSocket slots with idle sockets: the tenant's
 * other clients got 503 websocket_limit.
 */
const TENANT_LIMIT = 8;
const HOST = 'shared-slots.localhost';

type Attempt = { socket: WebSocket } | { status: number; body: string; retryAfter: unknown };

/** A WebSocket through the gateway, from the balancer at 127.0.0.1 for `forwardedFor`. */
function openWebSocket(gateway: TestGateway, forwardedFor: string): Promise<Attempt> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`ws://127.0.0.1:${gateway.gateway.trafficPort}/ws`, {
      headers: { host: HOST, 'x-forwarded-for': forwardedFor },
    });
    socket.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body, retryAfter: res.headers['retry-after'] }),
      );
    });
    socket.once('error', reject);
    socket.once('message', () => resolve({ socket }));
  });
}

describe('one client and its tenant’s WebSocket slots', () => {
  let echo: WebSocketOrigin;
  let gateway: TestGateway;
  const held: WebSocket[] = [];

  beforeAll(async () => {
    echo = await startWebSocketOrigin();
    gateway = await startTestGateway({
      GATEWAY_MAX_WEBSOCKETS_PER_TENANT: String(TENANT_LIMIT),
      GATEWAY_TRUSTED_PROXIES: '127.0.0.1/32',
    });
    gateway.store.apply(catchAllTenant('shared-slots', echo.url));
  });

  afterAll(async () => {
    for (const socket of held) socket.terminate();
    await gateway?.close();
    await echo?.close();
  });

  it('keeps the rest for the tenant’s other clients: past its share a client is refused 429', async () => {
    const attacker = await Promise.all(
      Array.from({ length: TENANT_LIMIT }, () => openWebSocket(gateway, '203.0.113.7')),
    );
    for (const attempt of attacker) if ('socket' in attempt) held.push(attempt.socket);
    // The default share: a quarter of the tenant's limit.
    expect(held).toHaveLength(TENANT_LIMIT / 4);
    const refused = attacker.find((attempt) => !('socket' in attempt));
    expect(refused).toMatchObject({ status: 429, retryAfter: expect.stringMatching(/^[1-9][0-9]*$/) });
    expect(JSON.parse((refused as { body: string }).body)).toMatchObject({
      error: { code: 'websocket_client_limit' },
    });

    const other = await openWebSocket(gateway, '198.51.100.9');
    expect('socket' in other).toBe(true);
    if ('socket' in other) held.push(other.socket);

    // A slot given back (once the gateway has seen the connection close) is the client's again.
    const closing = held.shift()!;
    await new Promise((resolve) => {
      closing.once('close', resolve);
      closing.close();
    });
    let again: Attempt = { status: 0, body: '', retryAfter: undefined };
    for (let attempt = 0; attempt < 50 && !('socket' in again); attempt++) {
      again = await openWebSocket(gateway, '203.0.113.7');
      if (!('socket' in again)) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect('socket' in again).toBe(true);
    if ('socket' in again) held.push(again.socket);
  }, 30_000);
});
