import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { eventually } from '@vantageedge/shared/snapshot-bus/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accessLinesOfRequest } from '../testing/access-lines.js';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { connectRaw } from '../testing/raw-connections.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { sendUpgrade } from '../testing/upgrade-request.js';

/**
 * Regression tests: WebSocket upgrade requests got no access-log line — not the refused ones (a bad
 * key's 401, an unknown host's 404), not an origin's relayed refusal, not a switched one — so a client
 * could guess API keys over upgrades without a trace, and refusals were missing from the request
 * metrics. Each upgrade request now gets the one line (and the metrics) any request gets.
 */
const AUTH_FAILURES_PER_MINUTE = 3;

describe('WebSocket upgrades in the access log and the request metrics', () => {
  let origin: Server;
  let gateway: TestGateway;
  let tenantId: string;
  const routeIds = { keyed: randomUUID(), query: randomUUID(), open: randomUUID() };
  /** What the usage counts were given: each request and its status (0: not counted). */
  const counted: Array<{ requestId: string; status: number }> = [];
  const countedAs = (requestId: string) =>
    counted.filter((entry) => entry.requestId === requestId).map((entry) => entry.status);
  /** Upgrades the origin received on /open/hang and never answers. */
  const hanging: Socket[] = [];

  beforeAll(async () => {
    origin = createServer((_req, res) => res.end('plain'));
    // Switches on /open/accept, refuses (403) anything else.
    origin.on('upgrade', (req, socket: Socket) => {
      if (req.url === '/open/hang') {
        hanging.push(socket); // never answers
        return;
      }
      if (req.url === '/open/accept') {
        socket.end(
          'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
            'Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n',
        );
      } else {
        socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno');
      }
    });
    await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
    gateway = await startTestGateway(
      {
        GATEWAY_AUTH_FAILURES_PER_MINUTE: String(AUTH_FAILURES_PER_MINUTE),
        GATEWAY_TRUSTED_PROXIES: '127.0.0.1/32',
      },
      { usage: { record: (exchange, status) => counted.push({ requestId: exchange.requestId, status }) } },
    );
    tenantId = randomUUID();
    const originId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        tenantId,
        subdomain: 'ws',
        origins: [{ id: originId, targets: [`http://127.0.0.1:${(origin.address() as AddressInfo).port}`] }],
        routes: [
          { id: routeIds.keyed, origin_id: originId, path_pattern: '/keyed/*', auth_mode: 'apikey_required' },
          {
            id: routeIds.query,
            origin_id: originId,
            path_pattern: '/query/*',
            auth_mode: 'apikey_required',
            websocket_token: 'query',
          },
          { id: routeIds.open, origin_id: originId, path_pattern: '/open/*' },
        ],
      }),
    );
  });

  afterAll(async () => {
    for (const socket of hanging) socket.destroy();
    await gateway?.close();
    origin?.closeAllConnections();
    await new Promise((resolve) => origin?.close(resolve));
  });

  /** The access-log lines of one request, once the batched writer has written them. */
  async function linesOf(requestId: string): Promise<Array<Record<string, unknown>>> {
    await new Promise((resolve) => setTimeout(resolve, 100));
    return accessLinesOfRequest(gateway, requestId);
  }

  it('writes one line for an upgrade refused 401 (bad key), with the fields of any request', async () => {
    const requestId = randomUUID();
    const answer = await sendUpgrade(gateway, 'ws.localhost', '/keyed/a', {
      'x-api-key': 'guess-1',
      'x-request-id': requestId,
    });
    expect(answer.status).toBe(401);
    const lines = await linesOf(requestId);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      message: 'request',
      tenant_id: tenantId,
      route_id: routeIds.keyed,
      method: 'GET',
      path: '/keyed/a',
      status: 401,
      error_code: 'invalid_api_key',
      client_ip: '127.0.0.1',
      auth: 'anonymous',
      upstream_target: null,
    });
    expect(lines[0]!['latency_ms']).toBeTypeOf('number');
  });

  it('writes the line of an upgrade to an unknown host (404) and never logs a query token', async () => {
    const unknownHost = randomUUID();
    await sendUpgrade(gateway, 'nobody.localhost', '/x?access_token=secret-1', {
      'x-request-id': unknownHost,
    });
    const queryToken = randomUUID();
    await sendUpgrade(gateway, 'ws.localhost', '/query/a?access_token=secret-2&room=1', {
      'x-request-id': queryToken,
    });
    const [notFound] = await linesOf(unknownHost);
    expect(notFound).toMatchObject({ tenant_id: null, route_id: null, path: '/x', status: 404 });
    expect(notFound!['error_code']).toBe('tenant_not_found');
    const [refused] = await linesOf(queryToken);
    expect(refused).toMatchObject({ route_id: routeIds.query, path: '/query/a', status: 401 });
    expect(JSON.stringify(gateway.logLines)).not.toMatch(/secret-[12]/);
  });

  it('writes the line of an origin refusal it relays, with the origin target and its time', async () => {
    const requestId = randomUUID();
    const answer = await sendUpgrade(gateway, 'ws.localhost', '/open/deny', { 'x-request-id': requestId });
    expect(answer.status).toBe(403);
    const lines = await linesOf(requestId);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ route_id: routeIds.open, status: 403, error_code: null });
    expect(lines[0]!['upstream_target']).toBeTypeOf('string');
    expect(lines[0]!['upstream_ms']).toBeTypeOf('number');
  });

  it('writes one line for a switched upgrade, when its connection ended', async () => {
    const requestId = randomUUID();
    const answer = await sendUpgrade(gateway, 'ws.localhost', '/open/accept', { 'x-request-id': requestId });
    expect(answer.status).toBe(101);
    // The origin ended the connection at once: the one line, written then.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const lines = await linesOf(requestId);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ route_id: routeIds.open, status: 101, error_code: null });
    expect(lines[0]!['upstream_ms']).toBeTypeOf('number');
  });

  it('counts upgrades in the request metrics as it counts requests, refusals among the errors', async () => {
    await sendUpgrade(gateway, 'ws.localhost', '/keyed/metrics', { 'x-api-key': 'guess-metrics' });
    await sendUpgrade(gateway, 'ws.localhost', '/open/accept');
    const text = await gateway.registry.metrics();
    expect(text).toMatch(
      new RegExp(
        `vantageedge_gateway_error_responses_total\\{tenant="${tenantId}",status="401",code="invalid_api_key"\\} \\d+`,
      ),
    );
    expect(text).toMatch(
      new RegExp(
        `vantageedge_gateway_request_duration_seconds_count\\{tenant="${tenantId}",route="${routeIds.open}",status_class="1xx"\\} \\d+`,
      ),
    );
  });

  it('counts keys guessed over upgrades against the client, as guesses over requests', async () => {
    // A client of its own (through the trusted proxy): the other tests' failures are 127.0.0.1's.
    const client = { 'x-forwarded-for': '203.0.113.7' };
    for (let i = 0; i < AUTH_FAILURES_PER_MINUTE; i++) {
      const guess = await sendUpgrade(gateway, 'ws.localhost', `/keyed/${i}`, {
        ...client,
        'x-api-key': `guess-${i}`,
      });
      expect(guess.status).toBe(401);
    }
    const requestId = randomUUID();
    const plain = await send(gateway, 'ws.localhost', '/keyed/plain', {
      headers: { ...client, 'x-api-key': 'guess-plain', 'x-request-id': requestId },
    });
    expect(plain.status).toBe(429);
    const upgrade = await sendUpgrade(gateway, 'ws.localhost', '/keyed/upgrade', {
      ...client,
      'x-api-key': 'guess-up',
    });
    expect(upgrade.status).toBe(429);
    const [line] = await linesOf(requestId);
    expect(line).toMatchObject({
      status: 429,
      error_code: 'too_many_auth_failures',
      client_ip: '203.0.113.7',
    });
  });
  // Regression: an upgrade whose client left before any answer was logged with res.statusCode's default
  // 200 (and counted as a 0xx), as if it had been answered.
  it('logs an upgrade whose client left before any answer as 499 client_closed_request', async () => {
    const requestId = randomUUID();
    const before = hanging.length;
    const client = await connectRaw('plain', gateway.gateway.trafficPort);
    client.socket.write(
      'GET /open/hang HTTP/1.1\r\nHost: ws.localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
        `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nX-Request-Id: ${requestId}\r\n\r\n`,
    );
    await eventually('the origin has the upgrade', () => hanging.length > before);
    client.socket.destroy();
    const logged = () => accessLinesOfRequest(gateway, requestId);
    await eventually('the upgrade is logged', () => logged().length > 0);
    expect(await linesOf(requestId)).toHaveLength(1);
    expect(logged()[0]).toMatchObject({
      status: 499,
      error_code: 'client_closed_request',
      response_complete: false,
      route_id: routeIds.open,
    });
    expect(countedAs(requestId).filter((status) => status !== 0)).toEqual([]);
  });
  // Regression: upgrades were missing from the usage counts (README said so: "not in the usage counts
  // yet"), while the quota counted them.
  it('counts an upgrade in usage once, as its 101 or its refusal; not one the client left', async () => {
    const [switched, refused] = [randomUUID(), randomUUID()];
    expect(
      (await sendUpgrade(gateway, 'ws.localhost', '/open/accept', { 'x-request-id': switched })).status,
    ).toBe(101);
    expect(
      (await sendUpgrade(gateway, 'ws.localhost', '/open/refuse', { 'x-request-id': refused })).status,
    ).toBe(403);
    await eventually('both are counted', () => countedAs(switched).length + countedAs(refused).length === 2);
    expect(countedAs(switched)).toEqual([101]);
    expect(countedAs(refused)).toEqual([403]);
  });
});
