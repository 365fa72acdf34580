import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  send,
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from './testing/gateway-harness.js';
import { catchAllTenant, connectRaw, pause, within } from './testing/raw-connections.js';

/**
 * The traffic listener's limits and timeouts (GATEWAY_HEADERS_TIMEOUT_MS, GATEWAY_REQUEST_TIMEOUT_MS,
 * GATEWAY_KEEP_ALIVE_TIMEOUT_MS, GATEWAY_MAX_HEADERS_COUNT, GATEWAY_MAX_CONNECTIONS,
 * GATEWAY_MAX_REQUESTS_PER_CONNECTION) as a client sees them. Regression tests: before, node's defaults
 * applied — a client trickling its headers held its connection for a minute, header lines past node's
 * count were dropped silently, and nothing bounded the open connections of a replica.
 */
const HOST = 'limits.localhost';

const tenantFor = (originUrl: string) => catchAllTenant('limits', originUrl);
const connect = (port: number) => connectRaw('plain', port);

// Each group has a gateway of its own, so the groups and the cases of a group run side by side, but for
// the cases of a gateway whose few connections one case takes.
describe.concurrent('the traffic listener', () => {
  describe('slow clients', () => {
    let origin: TestOrigin;
    let gateway: TestGateway;

    beforeAll(async () => {
      origin = await startTestOrigin('limits-origin');
      gateway = await startTestGateway({
        GATEWAY_HEADERS_TIMEOUT_MS: '1000',
        GATEWAY_REQUEST_TIMEOUT_MS: '2000',
      });
      gateway.store.apply(tenantFor(origin.url));
    });

    afterAll(async () => {
      await gateway?.close();
      await origin?.close();
    });

    it('hundreds of clients trickling headers: a normal client is still served, and the tricklers are cut at the headers timeout', async () => {
      const port = gateway.gateway.trafficPort;
      const tricklers = await Promise.all(Array.from({ length: 300 }, () => connect(port)));
      for (const client of tricklers) client.socket.write(`GET /slow-loris HTTP/1.1\r\nHost: ${HOST}\r\n`);
      let line = 0;
      const trickle = setInterval(() => {
        line += 1;
        for (const client of tricklers)
          if (!client.socket.destroyed) client.socket.write(`X-Trickle-${line}: ${line}\r\n`);
      }, 200);
      try {
        const normal = await within(send(gateway, HOST, '/normal'), 10_000, 'a normal client is served');
        expect(normal.status).toBe(200);
        expect(normal.json()['origin']).toBe('limits-origin');

        // node's default would hold them for 60 s; the gateway's headers timeout is 1 s here.
        await within(
          Promise.all(tricklers.map((client) => client.closed)),
          15_000,
          'every trickling client is disconnected',
        );
        // Those still connected when the timeout struck were told why.
        const answered = tricklers.filter((client) => client.received() !== '');
        expect(answered.length).toBeGreaterThan(0);
        for (const client of answered)
          expect(client.received()).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
      } finally {
        clearInterval(trickle);
        for (const client of tricklers) client.socket.destroy();
      }
      expect(origin.seen.some((request) => request.url === '/slow-loris')).toBe(false);
    });

    it('a client that trickles its body is cut at the request timeout', async () => {
      const client = await connect(gateway.gateway.trafficPort);
      client.socket.write(`POST /upload HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 1000\r\n\r\n`);
      const drip = setInterval(() => {
        if (!client.socket.destroyed) client.socket.write('x');
      }, 200);
      try {
        await within(client.closed, 15_000, 'the slow uploader is disconnected');
        expect(client.received()).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
      } finally {
        clearInterval(drip);
        client.socket.destroy();
      }
    });
  });

  describe('idle keep-alive connections', () => {
    let origin: TestOrigin;
    let gateway: TestGateway;

    beforeAll(async () => {
      origin = await startTestOrigin('limits-origin');
      gateway = await startTestGateway({
        GATEWAY_HEADERS_TIMEOUT_MS: '1000',
        GATEWAY_REQUEST_TIMEOUT_MS: '2000',
        GATEWAY_KEEP_ALIVE_TIMEOUT_MS: '1000',
      });
      gateway.store.apply(tenantFor(origin.url));
    });

    afterAll(async () => {
      await gateway?.close();
      await origin?.close();
    });

    // Regression test: any byte on an idle keep-alive connection made node drop its keep-alive timer, and
    // blank lines (which begin no request, so no headers timeout) then held the connection for ever.
    it('a client sending only blank lines after its response is cut once the keep-alive and headers timeouts passed', async () => {
      const client = await connect(gateway.gateway.trafficPort);
      client.socket.write(`GET /then-blank-lines HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
      const blankLines = setInterval(() => {
        if (!client.socket.destroyed) client.socket.write('\r\n');
      }, 200);
      try {
        // keep-alive 1 s (+ node's 1 s buffer) and then 1 s for a request's head: 3 s, well within 8 s.
        await within(client.closed, 8_000, 'the connection sending blank lines is closed');
        expect(client.received()).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
      } finally {
        clearInterval(blankLines);
        client.socket.destroy();
      }
    });

    it('a keep-alive client that sends its next request in time is served on the same connection', async () => {
      const client = await connect(gateway.gateway.trafficPort);
      try {
        for (const path of ['/first', '/second', '/third']) {
          client.socket.write(`GET ${path} HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
          await pause(700);
          expect(client.received()).toContain(`"url":"${path}"`);
        }
        expect(client.socket.destroyed).toBe(false);
      } finally {
        client.socket.destroy();
      }
    });
  });

  describe('connection and header limits', () => {
    let origin: TestOrigin;
    let gateway: TestGateway;

    beforeAll(async () => {
      origin = await startTestOrigin('limits-origin');
      gateway = await startTestGateway({
        GATEWAY_MAX_CONNECTIONS: '5',
        GATEWAY_MAX_HEADERS_COUNT: '20',
        GATEWAY_MAX_REQUESTS_PER_CONNECTION: '2',
        GATEWAY_KEEP_ALIVE_TIMEOUT_MS: '3000',
      });
      gateway.store.apply(tenantFor(origin.url));
    });

    afterAll(async () => {
      await gateway?.close();
      await origin?.close();
    });

    it.sequential('a request with more header lines than GATEWAY_MAX_HEADERS_COUNT is answered 431, not forwarded half-read', async () => {
      const many: Record<string, string> = {};
      for (let index = 0; index < 25; index += 1) many[`x-extra-${index}`] = String(index);
      const refused = await send(gateway, HOST, '/many-headers', { headers: many });
      expect(refused.status).toBe(431);
      expect(refused.json()).toEqual({
        error: { code: 'too_many_headers', message: 'a request may have at most 20 header lines' },
      });
      expect(origin.seen.some((request) => request.url === '/many-headers')).toBe(false);

      const few = await send(gateway, HOST, '/few-headers', { headers: { 'x-one': '1', 'x-two': '2' } });
      expect(few.status).toBe(200);
    });

    it.sequential('keep-alive: the timeout is announced, and the last response of a connection budget says close', async () => {
      const client = await connect(gateway.gateway.trafficPort);
      const answered = (path: string) =>
        within(
          new Promise<void>((resolve) => {
            const check = setInterval(() => {
              if (client.received().includes(`"url":"${path}"`)) {
                clearInterval(check);
                resolve();
              }
            }, 20);
          }),
          5_000,
          `the answer to ${path}`,
        );
      const ask = (path: string) => client.socket.write(`GET ${path} HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
      try {
        ask('/first');
        await answered('/first');
        expect(client.received().toLowerCase()).toContain('keep-alive: timeout=3');
        ask('/second');
        await answered('/second');
        const answers = client
          .received()
          .split('HTTP/1.1 ')
          .filter((part) => part !== '');
        expect(answers).toHaveLength(2);
        expect(answers[0]?.toLowerCase()).toContain('connection: keep-alive');
        expect(answers[1]?.toLowerCase()).toContain('connection: close');
      } finally {
        client.socket.destroy();
      }
    });

    it.sequential('connections beyond GATEWAY_MAX_CONNECTIONS are closed on arrival; freed slots serve again', async () => {
      const holders = await Promise.all(
        Array.from({ length: 5 }, () => connect(gateway.gateway.trafficPort)),
      );
      try {
        // Let the server register all five before the sixth arrives.
        await pause(200);
        const extra = await connect(gateway.gateway.trafficPort);
        extra.socket.write(`GET /over-the-limit HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
        await within(extra.closed, 5_000, 'the extra connection is closed');
        expect(extra.received()).toBe('');
        const metrics = await (await fetch(`${gateway.adminUrl}/metrics`)).text();
        expect(metrics).toMatch(/vantageedge_gateway_dropped_connections_total(\{[^}]*\})? [1-9]/);
      } finally {
        for (const holder of holders) holder.socket.destroy();
      }
      await Promise.all(holders.map((holder) => holder.closed));
      await pause(200);
      const served = await new Promise<number>((resolve, reject) => {
        const request = httpRequest(
          { host: '127.0.0.1', port: gateway.gateway.trafficPort, path: '/after', headers: { host: HOST } },
          (response) => {
            response.resume();
            resolve(response.statusCode ?? 0);
          },
        );
        request.on('error', reject);
        request.end();
      });
      expect(served).toBe(200);
    });
  });

  describe('one client and the connection budget', () => {
    let origin: TestOrigin;
    let gateway: TestGateway;

    beforeAll(async () => {
      origin = await startTestOrigin('limits-origin');
      gateway = await startTestGateway({
        GATEWAY_MAX_CONNECTIONS: '20',
        GATEWAY_MAX_CONNECTIONS_PER_CLIENT: '5',
      });
      gateway.store.apply(tenantFor(origin.url));
    });

    afterAll(async () => {
      await gateway?.close();
      await origin?.close();
    });

    // Regression test: GATEWAY_MAX_CONNECTIONS was the only bound, so one client address could hold every
    // connection of a replica (idle connections, WebSockets, slow uploads) and every other client was refused.
    it('one address cannot take every connection of the replica: another client is still served', async () => {
      const port = gateway.gateway.trafficPort;
      const hogs = await Promise.all(Array.from({ length: 20 }, () => connect(port)));
      try {
        await pause(200);
        const status = await new Promise<number>((resolve, reject) => {
          const request = httpRequest(
            {
              host: '127.0.0.1',
              port,
              localAddress: '127.0.0.2',
              path: '/another-client',
              headers: { host: HOST },
            },
            (response) => {
              response.resume();
              resolve(response.statusCode ?? 0);
            },
          );
          request.on('error', reject);
          request.end();
        });
        expect(status).toBe(200);
        // The address's connections past GATEWAY_MAX_CONNECTIONS_PER_CLIENT were closed on arrival.
        expect(hogs.filter((hog) => !hog.socket.destroyed)).toHaveLength(5);
        const metrics = await (await fetch(`${gateway.adminUrl}/metrics`)).text();
        expect(metrics).toContain('vantageedge_gateway_dropped_client_connections_total 15');
      } finally {
        for (const hog of hogs) hog.socket.destroy();
      }
    });
  });

  describe('requests the gateway does not proxy', () => {
    let gateway: TestGateway;

    beforeAll(async () => {
      gateway = await startTestGateway();
    });

    afterAll(async () => {
      await gateway?.close();
    });

    // Regression test (found by the replica robustness property test): node drops a CONNECT request's
    // connection without a word unless the server listens for it.
    it('CONNECT is answered 405 in the error shape, not dropped', async () => {
      const client = await connect(gateway.gateway.trafficPort);
      client.socket.write(`CONNECT ${HOST}:443 HTTP/1.1\r\nHost: ${HOST}:443\r\n\r\n`);
      await within(client.closed, 5_000, 'the CONNECT answer');
      const [head, body] = client.received().split('\r\n\r\n');
      expect(head?.startsWith('HTTP/1.1 405 Method Not Allowed')).toBe(true);
      expect(JSON.parse(body ?? '')).toEqual({
        error: { code: 'method_not_supported', message: 'the gateway does not tunnel CONNECT requests' },
      });
    });
  });

  describe('listener settings', () => {
    it('a request timeout below the headers timeout is refused at start-up, naming the setting', async () => {
      await expect(
        startTestGateway({ GATEWAY_HEADERS_TIMEOUT_MS: '5000', GATEWAY_REQUEST_TIMEOUT_MS: '1000' }),
      ).rejects.toThrow(/GATEWAY_REQUEST_TIMEOUT_MS/);
    });
  });
});
