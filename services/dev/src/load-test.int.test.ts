import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runLoadTest } from './load-test.js';

/**
 * A gateway answers GATEWAY_MAX_REQUESTS_PER_CONNECTION requests on one HTTP/1.1 connection, the last
 * with `Connection: close`. autocannon does not read that header and went on sending on the connection,
 * which node answers 503 from then on: make load-test reported most of its requests as 503s.
 */
describe('make load-test against a gateway with a per-connection request limit', () => {
  const REQUESTS_PER_CONNECTION = 25;
  let server: http.Server;
  let url: string;

  beforeAll(async () => {
    server = http.createServer((_req, res) => res.writeHead(200, { 'x-cache': 'HIT' }).end('{}'));
    server.maxRequestsPerSocket = REQUESTS_PER_CONNECTION;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('opens a new connection before the limit, so every answer is the server’s own', async () => {
    const summary = await runLoadTest({
      url,
      host: 'demo.localhost',
      token: 'token',
      durationSeconds: 1,
      connections: 2,
      requestsPerConnection: REQUESTS_PER_CONNECTION,
    });
    expect(summary.requests).toBeGreaterThan(4 * REQUESTS_PER_CONNECTION);
    expect(summary.status).toEqual({ '200': summary.requests });
  });
});
