import { randomUUID } from 'node:crypto';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Authenticator } from '../auth/authenticator.js';
import { GatewayConfigStore } from '../config/gateway-config-store.js';
import { startTestOrigin, TEST_PEPPER, type TestOrigin } from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { createUpstreamSet } from '../upstream/index.js';
import { loopbackOriginsAllowed } from '../upstream/testing/test-origin.js';
import { createGatewayMiddleware } from './gateway-handler.js';

/** The pipeline mounted in an express app: tenant hosts are proxied, other hosts fall through to next(). */
describe('gateway as express middleware', () => {
  let origin: TestOrigin;
  let server: Server;
  let store: GatewayConfigStore;
  let port: number;

  beforeAll(async () => {
    origin = await startTestOrigin('mounted');
    store = new GatewayConfigStore({
      baseDomains: ['localhost'],
      createUpstreamSet: (config, tenantId) =>
        createUpstreamSet(config, { tenantId, addressPolicy: loopbackOriginsAllowed() }),
    });
    const originId = randomUUID();
    store.apply(
      buildSnapshot({
        subdomain: 'acme',
        origins: [{ id: originId, targets: [origin.url] }],
        routes: [{ origin_id: originId, path_pattern: '/*' }],
      }),
    );
    const app = express();
    app.use(
      createGatewayMiddleware({
        store,
        authenticator: new Authenticator({ apiKeyPepper: TEST_PEPPER }),
        maxBodyBytes: 1024,
      }),
    );
    app.get('/hello', (_req, res) => {
      res.json({ from: 'express' });
    });
    server = createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  /** GET /hello with a Host header (fetch refuses to set one). */
  function getJson(host: string): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, path: '/hello', headers: { host } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () => resolve(JSON.parse(text) as Record<string, unknown>));
      });
      req.on('error', reject);
      req.end();
    });
  }

  afterAll(async () => {
    await new Promise((resolve) => server?.close(resolve));
    await store?.close();
    await origin?.close();
  });

  it('proxies requests for a tenant host and passes every other host to the next handler', async () => {
    expect((await getJson('acme.localhost'))['origin']).toBe('mounted');
    expect(await getJson('elsewhere.example')).toEqual({ from: 'express' });
  });
});
