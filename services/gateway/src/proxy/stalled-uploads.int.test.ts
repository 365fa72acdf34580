import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { applyOneOriginTenant } from '../testing/one-origin-tenants.js';
import type { InspectableUpstreamSet } from '../upstream/upstream-set.js';

/**
 * Origins close a connection whose request body stalls without answering (nginx's client_body_timeout,
 * HAProxy's timeout http-request). That close was counted against the target: five clients stalling
 * their uploads at once ejected it and opened its circuit, and every other client of the tenant got 503.
 * A close while the client's unfinished body has sent nothing for a second is the client's doing; a
 * close while the body flows is still the origin's.
 */
const BODY_TIMEOUT_MS = 1_500;
const HOST = 'stalled-upload.localhost';

let gateway: TestGateway;
let origin: net.Server;
let resetting: net.Server;
let upstreams: () => InspectableUpstreamSet;
let resettingUpstreams: () => InspectableUpstreamSet;

/** Answers a whole request 200; closes without answering one whose body stops for BODY_TIMEOUT_MS. */
function startBodyTimeoutOrigin(): Promise<net.Server> {
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    let buffered = Buffer.alloc(0);
    let timer: NodeJS.Timeout | undefined;
    socket.on('data', (chunk) => {
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buffered.subarray(0, end).toString('latin1');
      const length = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? 0);
      clearTimeout(timer);
      if (buffered.length - end - 4 >= length) {
        buffered = Buffer.alloc(0);
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
        return;
      }
      timer = setTimeout(() => socket.destroy(), BODY_TIMEOUT_MS);
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/** Resets every connection 300 ms after a request's head came, its body flowing or not. */
function startResettingOrigin(): Promise<net.Server> {
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    socket.once('data', () => setTimeout(() => socket.resetAndDestroy(), 300));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/**
 * A POST that sends its head and 10 of its 1,000 bytes, then nothing (`flowing`: 10 more every 100 ms);
 * its status line once closed.
 */
function upload(host: string, flowing = false): Promise<string> {
  return new Promise((resolve) => {
    const client = net.connect({ port: gateway.gateway.trafficPort, host: '127.0.0.1' });
    let answer = '';
    client.on('data', (data) => {
      answer += data.toString('latin1');
    });
    client.on('error', () => {});
    const trickle = flowing ? setInterval(() => client.write('0123456789'), 100) : undefined;
    client.on('close', () => {
      clearInterval(trickle);
      resolve(answer.split('\r\n')[0] ?? '');
    });
    client.write(`POST /upload HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 1000\r\n\r\n0123456789`);
    setTimeout(() => client.destroy(), BODY_TIMEOUT_MS * 3);
  });
}

beforeAll(async () => {
  origin = await startBodyTimeoutOrigin();
  gateway = await startTestGateway();
  upstreams = applyOneOriginTenant(gateway, 'stalled-upload', {
    targets: [`http://127.0.0.1:${(origin.address() as net.AddressInfo).port}`],
  });
  resetting = await startResettingOrigin();
  resettingUpstreams = applyOneOriginTenant(gateway, 'reset-upload', {
    targets: [`http://127.0.0.1:${(resetting.address() as net.AddressInfo).port}`],
  });
});

afterAll(async () => {
  await gateway?.close();
  origin?.close();
  resetting?.close();
});

describe('clients that stall their uploads', () => {
  it("leave the target healthy and its circuit closed for the tenant's other clients", async () => {
    expect((await send(gateway, HOST, '/before', { method: 'POST', body: 'x' })).status).toBe(200);

    const stalled = await Promise.all(Array.from({ length: 5 }, () => upload(HOST)));

    expect(stalled).toEqual(Array(5).fill('HTTP/1.1 502 Bad Gateway'));
    expect(upstreams().status()).toMatchObject([{ healthy: true, circuit: 'closed' }]);
    expect((await send(gateway, HOST, '/after')).status).toBe(200);
  }, 30_000);

  it('still count against a target that resets them while their bodies flow', async () => {
    const cut = await Promise.all(Array.from({ length: 5 }, () => upload('reset-upload.localhost', true)));

    expect(cut).toEqual(Array(5).fill('HTTP/1.1 502 Bad Gateway'));
    expect(resettingUpstreams().status()).toMatchObject([{ healthy: false }]);
  }, 30_000);
});
