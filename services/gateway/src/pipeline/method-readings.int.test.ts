import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { ClientHttp2Session } from 'node:http2';
import { type AddressInfo, createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import { hashApiKey } from '@vantageedge/shared/domain/api-key-hash';
import { http2Connect, http2Request } from '@vantageedge/shared/testing/tls-clients';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, startTestGateway, TEST_PEPPER, type TestGateway } from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * Regression tests for methods an origin reads as another one than the route matcher did. With `/api/*`
 * public for every method and keyed routes for one method under it:
 *  - HTTP/2 lets a client send `:method: delete`; the keyed DELETE route did not match it, the public
 *    route forwarded it, and an origin that reads methods case-insensitively (ASP.NET, Werkzeug) ran its
 *    DELETE handler without a key;
 *  - `HEAD /api/admin/users` skipped the keyed GET route, and an Express origin (like Rails, Django,
 *    Spring) answered it with its GET handler: the handler ran and its headers came back, without a key.
 */
const KEY = 've_live_method_readings_key_000000000';
const HOST = 'methods.localhost';

/** An origin that takes any request line: records it and answers 200 (methods of any case). */
async function startLenientOrigin(requestLines: string[]): Promise<TcpServer> {
  const server = createTcpServer((socket) => {
    socket.on('error', () => {});
    socket.once('data', (chunk: Buffer) => {
      requestLines.push(chunk.toString('latin1').split('\r\n')[0]!);
      socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

describe('a route is chosen by the method the origin will read', () => {
  let gateway: TestGateway;
  let lenient: TcpServer;
  let expressOrigin: Server;
  let session: ClientHttp2Session;
  const requestLines: string[] = [];
  const adminHits: string[] = [];

  beforeAll(async () => {
    lenient = await startLenientOrigin(requestLines);
    const app = express();
    app.get('/api/admin/users', (req, res) => {
      adminHits.push(req.method);
      res.set('x-admin-total', '42').json({ handler: 'admin' });
    });
    app.all('/api/public', (_req, res) => {
      res.json({ handler: 'public' });
    });
    expressOrigin = await new Promise<Server>((resolve) => {
      const server = app.listen(0, '127.0.0.1', () => resolve(server));
    });
    gateway = await startTestGateway({ GATEWAY_H2C: 'true' });
    const lenientId = randomUUID();
    const expressId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        subdomain: 'methods',
        origins: [
          { id: lenientId, targets: [`http://127.0.0.1:${(lenient.address() as AddressInfo).port}`] },
          { id: expressId, targets: [`http://127.0.0.1:${(expressOrigin.address() as AddressInfo).port}`] },
        ],
        routes: [
          { origin_id: expressId, path_pattern: '/api/*' },
          {
            origin_id: expressId,
            path_pattern: '/api/admin/*',
            methods: ['GET'],
            auth_mode: 'apikey_required',
          },
          { origin_id: lenientId, path_pattern: '/lenient/*' },
          {
            origin_id: lenientId,
            path_pattern: '/lenient/users/:id',
            methods: ['DELETE'],
            auth_mode: 'apikey_required',
          },
        ],
        apiKeys: [{ key_hash: hashApiKey(TEST_PEPPER, KEY) }],
      }),
    );
    session = http2Connect(gateway.url);
  });

  afterAll(async () => {
    session?.close();
    await gateway?.close();
    await new Promise((resolve) => lenient?.close(resolve));
    await new Promise((resolve) => expressOrigin?.close(resolve));
  });

  it.each(['delete', 'Delete', 'get'])(
    'refuses an HTTP/2 method with lower-case letters (%s) 400 invalid_method',
    async (method) => {
      const before = requestLines.length;
      const answer = await http2Request(session, { path: '/lenient/users/1', authority: HOST, method });
      expect(answer.status).toBe(400);
      expect(JSON.parse(answer.body)).toMatchObject({ error: { code: 'invalid_method' } });
      expect(requestLines.length).toBe(before);
    },
  );

  it('HEAD gets the protection of the GET route an origin answers it with', async () => {
    const anonymous = await send(gateway, HOST, '/api/admin/users', { method: 'HEAD' });
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers['x-admin-total']).toBeUndefined();
    expect(adminHits).toEqual([]);
    const keyed = await send(gateway, HOST, '/api/admin/users', {
      method: 'HEAD',
      headers: { 'x-api-key': KEY },
    });
    expect(keyed.status).toBe(200);
    expect(keyed.headers['x-admin-total']).toBe('42');
    expect(adminHits).toEqual(['HEAD']);
  });

  it('leaves ordinary methods alone', async () => {
    const keyedDelete = await http2Request(session, {
      path: '/lenient/users/1',
      authority: HOST,
      method: 'DELETE',
      headers: { 'x-api-key': KEY },
    });
    expect(keyedDelete.status).toBe(200);
    expect(requestLines.at(-1)).toBe('DELETE /lenient/users/1 HTTP/1.1');
    expect(
      (await http2Request(session, { path: '/lenient/x', authority: HOST, method: 'PATCH' })).status,
    ).toBe(200);
    expect((await send(gateway, HOST, '/api/public', { method: 'HEAD' })).status).toBe(200);
    expect((await send(gateway, HOST, '/api/admin/users')).status).toBe(401);
  });
});
