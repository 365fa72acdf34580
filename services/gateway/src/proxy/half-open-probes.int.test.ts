import {
  type ClientRequest,
  request as httpRequest,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import { eventually } from '@vantageedge/shared/snapshot-bus/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { applyOneOriginTenant } from '../testing/one-origin-tenants.js';
import { startWebSocketOrigin, type WebSocketOrigin } from '../testing/websocket-origins.js';
import type { InspectableUpstreamSet } from '../upstream/upstream-set.js';

/**
 * Regression: a half-open circuit's probe slot went to the first request admitted, for as long as its
 * exchange lasted, the client's upload included. A client that sent its body slowly (or paused it)
 * held the slot until GATEWAY_REQUEST_TIMEOUT_MS, and every other client of a recovered origin got
 * 503 in the meantime, as often as that client won the slot. So did a client whose probe was a long
 * response (a stream, a download read slowly) or a WebSocket: the probe was judged only when it ended.
 * Then a probe was judged by its response head alone, so a target sending good heads and cutting every
 * body closed its circuit with each probe: now a probe is judged when its body ends, a long one once it
 * has streamed for the circuit's trial watch (open_seconds, at most HALF_OPEN_TRIAL_WATCH_MAX_MS).
 */
let gateway: TestGateway;
let origin: WebSocketOrigin;
const streams = new Set<ServerResponse>();

beforeAll(async () => {
  origin = await startWebSocketOrigin({
    plain: (req, res) => {
      if (req.url === '/stream') {
        // A long response (a download, server-sent events): the head and a first part now, the rest later.
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('data: first\n\n');
        streams.add(res);
        return;
      }
      if (req.url === '/cut') {
        // A good head, the start of the body, then the connection cut before the rest.
        res.writeHead(200, { 'content-length': '10' });
        res.write('half!', () => setTimeout(() => res.socket?.destroy(), 50));
        return;
      }
      req.resume();
      req.on('end', () => {
        res.statusCode = req.url === '/fail' ? 500 : 200;
        res.end(req.url === '/fail' ? 'failed' : 'healthy');
      });
    },
  });
  gateway = await startTestGateway();
});

afterAll(async () => {
  for (const stream of streams) stream.end();
  await gateway?.close();
  await origin?.close();
});

/** A tenant of its own whose one target's circuit opens on one failure and half-opens soon after. */
function tenantWithTrippingCircuit(subdomain: string): () => InspectableUpstreamSet {
  return applyOneOriginTenant(gateway, subdomain, {
    targets: [origin.url],
    circuit_breaker: { consecutive_failures: 1, open_seconds: 0.1, half_open_requests: 1 },
    health_check: { active: { enabled: false }, passive: { enabled: false } },
  });
}

/** A POST that sends the first half of its body now; `finish` sends the rest and resolves with the status. */
function pausedUpload(host: string): { request: ClientRequest; finish(): Promise<number> } {
  let answered: (status: number) => void = () => {};
  const status = new Promise<number>((resolve) => {
    answered = resolve;
  });
  const request = httpRequest(
    {
      host: '127.0.0.1',
      port: gateway.gateway.trafficPort,
      method: 'POST',
      path: '/upload',
      headers: { host, 'content-length': '10' },
      agent: false,
    },
    (res) => {
      res.resume();
      res.on('end', () => answered(res.statusCode ?? 0));
    },
  );
  request.on('error', () => answered(0));
  request.write('12345');
  return {
    request,
    finish() {
      request.end('67890');
      return status;
    },
  };
}

describe('a half-open circuit', () => {
  it('serves other clients while a client is still sending its body to the target', async () => {
    const upstreams = tenantWithTrippingCircuit('half-open-upload');
    const host = 'half-open-upload.localhost';
    expect((await send(gateway, host, '/fail')).status).toBe(500);
    await eventually('the circuit half-opens', () => upstreams().status()[0]?.circuit === 'half_open', 5_000);

    const upload = pausedUpload(host);
    await eventually('the upload reached the target', () => upstreams().status()[0]?.in_flight === 1, 5_000);
    const other = await send(gateway, host, '/x');
    expect({ status: other.status, text: other.text }).toEqual({ status: 200, text: 'healthy' });
    expect(upstreams().status()[0]?.circuit).toBe('closed');

    expect(await upload.finish()).toBe(200);
    await eventually('every lease is released', () => upstreams().status()[0]?.in_flight === 0, 5_000);
    expect(upstreams().status()[0]?.circuit).toBe('closed');
  });

  it('judges a probe by its whole answer: a body the origin cuts opens the circuit again', async () => {
    const upstreams = tenantWithTrippingCircuit('half-open-cut');
    const host = 'half-open-cut.localhost';
    expect((await send(gateway, host, '/fail')).status).toBe(500);
    await eventually('the circuit half-opens', () => upstreams().status()[0]?.circuit === 'half_open', 5_000);

    await expect(send(gateway, host, '/cut')).rejects.toThrow();
    await eventually('every lease is released', () => upstreams().status()[0]?.in_flight === 0, 5_000);
    expect(upstreams().status()[0]?.circuit).toBe('open');
  });

  it('judges a long probe once it has streamed for the trial watch, not when the client is done reading', async () => {
    const upstreams = tenantWithTrippingCircuit('half-open-stream');
    const host = 'half-open-stream.localhost';
    expect((await send(gateway, host, '/fail')).status).toBe(500);
    await eventually('the circuit half-opens', () => upstreams().status()[0]?.circuit === 'half_open', 5_000);

    const stream = await new Promise<IncomingMessage>((resolve, reject) => {
      const request = httpRequest(
        {
          host: '127.0.0.1',
          port: gateway.gateway.trafficPort,
          path: '/stream',
          headers: { host },
          agent: false,
        },
        resolve,
      );
      request.on('error', reject);
      request.end();
    });
    expect(stream.statusCode).toBe(200);
    // Its trial watch is the circuit's open_seconds (0.1 s): closed while the stream is still open.
    await eventually('the circuit closes', () => upstreams().status()[0]?.circuit === 'closed', 5_000);
    const other = await send(gateway, host, '/x');
    expect({ status: other.status, text: other.text }).toEqual({ status: 200, text: 'healthy' });
    expect(upstreams().status()[0]).toMatchObject({ in_flight: 1, healthy: true });
    stream.destroy();
  });

  it('judges a WebSocket probe by its switch of protocols, not when the WebSocket closes', async () => {
    const upstreams = tenantWithTrippingCircuit('half-open-websocket');
    const host = 'half-open-websocket.localhost';
    expect((await send(gateway, host, '/fail')).status).toBe(500);
    await eventually('the circuit half-opens', () => upstreams().status()[0]?.circuit === 'half_open', 5_000);

    const socket = new WebSocket(`${gateway.url.replace('http', 'ws')}/chat`, { headers: { host } });
    socket.on('error', () => {});
    expect(String(await new Promise((resolve) => socket.once('message', resolve)))).toBe('hello');
    expect(upstreams().status()[0]?.circuit).toBe('closed');
    const other = await send(gateway, host, '/x');
    expect({ status: other.status, text: other.text }).toEqual({ status: 200, text: 'healthy' });
    socket.terminate();
  });
});
