import type { Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { InMemoryEventStore } from '@vantageedge/shared/event-store/in-memory/in-memory-event-store';
import {
  type ClerkTestKeys,
  createClerkTestKeys,
  OFFLINE_CLERK_ISSUER,
  OFFLINE_CLERK_PUBLISHABLE_KEY,
  signClerkToken,
} from '@vantageedge/shared/testing/clerk-tokens';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createControlPlaneApp } from './app.js';
import { listenControlPlane } from './listener.js';

/**
 * What the admin API's listener answers anyone, before and around authentication, over raw sockets.
 * Nothing here connects to PostgreSQL.
 */
const ADMIN = 'user_expect_continue_admin';
const pool = new pg.Pool({ connectionString: 'postgres://unused@127.0.0.1:1/unused' });
const store = new InMemoryEventStore();
let keys: ClerkTestKeys;
let server: Server;
let port = 0;
const sockets: Socket[] = [];

beforeAll(async () => {
  keys = await createClerkTestKeys();
  const app = createControlPlaneApp({
    store,
    pool,
    auth: {
      jwtKey: keys.publicKeyPem,
      publishableKey: OFFLINE_CLERK_PUBLISHABLE_KEY,
      issuer: OFFLINE_CLERK_ISSUER,
      authorizedParties: [],
      platformAdminUserIds: new Set([ADMIN]),
    },
    apiKeyPepper: 'unit-pepper-0123456789abcdef0123456789abcdef',
  });
  server = await listenControlPlane(app, {
    host: '127.0.0.1',
    port: 0,
    headersTimeoutMs: 10_000,
    requestTimeoutMs: 60_000,
    keepAliveTimeoutMs: 5_000,
    maxConnections: 100,
    maxConnectionsPerClient: 0,
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  port = address.port;
});
afterAll(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  await store.close();
  await pool.end();
});

interface Exchange {
  socket: Socket;
  /** Everything the server wrote so far. */
  received: () => string;
  /** Resolves once the server has written a final (non-1xx) response head, or closed. */
  finalHead: Promise<string>;
  /** Resolves once the server has written `100 Continue`, or closed. */
  continued: Promise<string>;
  /** Resolves once the server has closed the connection. */
  closed: Promise<void>;
}

/**
 * Sends a request head only: the body stays with the client until it is invited. A half-open client
 * keeps sending after the server ended its side.
 */
function sendHead(head: string, { halfOpen = false } = {}): Exchange {
  const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: halfOpen });
  sockets.push(socket);
  socket.on('error', () => {});
  let data = '';
  const waiters: { done: (text: string) => boolean; resolve: (text: string) => void }[] = [];
  const settle = (closed: boolean) => {
    for (const waiter of waiters.splice(0)) {
      if (closed || waiter.done(data)) waiter.resolve(data);
      else waiters.push(waiter);
    }
  };
  const until = (done: (text: string) => boolean) =>
    new Promise<string>((resolve) => {
      waiters.push({ done, resolve });
      settle(socket.destroyed);
    });
  socket.on('data', (chunk: Buffer) => {
    data += chunk.toString('latin1');
    settle(false);
  });
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('close', () => settle(true));
  socket.write(head);
  return {
    socket,
    received: () => data,
    finalHead: until((text) => /HTTP\/1\.1 [2-5]\d\d [^\r]*\r\n(?:[^\r]+\r\n)*\r\n/.test(text)),
    continued: until((text) => text.includes('100 Continue')),
    closed,
  };
}

const uploadHead = (headers: string[], contentLength: number) =>
  [
    'POST /api/v1/tenants HTTP/1.1',
    'Host: cp',
    'Content-Type: application/json',
    `Content-Length: ${contentLength}`,
    'Expect: 100-continue',
    'Connection: close',
    ...headers,
    '',
    '',
  ].join('\r\n');

/**
 * `Expect: 100-continue` asks the server whether to send the body. The admin API's listener says yes
 * only to a caller it has authenticated and whose announced body it would read; everyone else gets the
 * final answer (401, 413, 417) without being invited to upload.
 */
describe('Expect: 100-continue on the admin API', () => {
  it('answers an upload without a credential 401, without inviting its body', async () => {
    const exchange = sendHead(uploadHead([], 5_000_000));
    const answer = await exchange.finalHead;
    expect(answer).not.toContain('100 Continue');
    expect(answer).toMatch(/^HTTP\/1\.1 401 /);
    expect(answer).toContain('"unauthenticated"');
  });

  it('closes a keep-alive connection after refusing, rather than wait for the body it did not invite', async () => {
    const exchange = sendHead(uploadHead([], 5_000_000).replace('Connection: close\r\n', ''));
    expect(await exchange.finalHead).toMatch(/^HTTP\/1\.1 401 [\s\S]*\r\nConnection: close\r\n/i);
    await exchange.closed;
  });

  it('answers an upload with a token the instance did not sign 401, without inviting its body', async () => {
    const forged = await signClerkToken(await createClerkTestKeys(), { userId: ADMIN });
    const exchange = sendHead(uploadHead([`Authorization: Bearer ${forged}`], 5_000_000));
    const answer = await exchange.finalHead;
    expect(answer).not.toContain('100 Continue');
    expect(answer).toMatch(/^HTTP\/1\.1 401 /);
  });

  it('answers a signed-in caller announcing a body larger than it takes 413, without inviting it', async () => {
    const token = await signClerkToken(keys, { userId: ADMIN });
    const exchange = sendHead(uploadHead([`Authorization: Bearer ${token}`], 50_000_000));
    const answer = await exchange.finalHead;
    expect(answer).not.toContain('100 Continue');
    expect(answer).toMatch(/^HTTP\/1\.1 413 /);
    expect(answer).toContain('"payload_too_large"');
  });

  it('invites the body of a signed-in caller, then answers the request', async () => {
    const token = await signClerkToken(keys, { userId: ADMIN });
    const body = JSON.stringify({ name: 'Expect', subdomain: 'expect-continue' });
    const exchange = sendHead(uploadHead([`Authorization: Bearer ${token}`], Buffer.byteLength(body)));
    expect(await exchange.continued).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\n/);
    exchange.socket.write(body);
    const answer = await exchange.finalHead;
    expect(answer).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 \d{3} /);
    expect(answer).not.toMatch(/HTTP\/1\.1 (401|413|417) /);
  });

  it('answers an expectation it does not support 417', async () => {
    const exchange = sendHead(uploadHead(['Expect: 200-ok'], 10).replace('Expect: 100-continue\r\n', ''));
    const answer = await exchange.finalHead;
    expect(answer).toMatch(/^HTTP\/1\.1 417 /);
    expect(answer).not.toContain('100 Continue');
  });
});

/**
 * A body sent without `Expect: 100-continue` arrives uninvited. When the answer goes out before all of
 * it arrived (a refusal before the body is read), node would read and drop the rest, for as long as the
 * client sends it: an anonymous client could stream gigabytes through the listener's parser.
 */
describe('bodies the admin API answers before reading', () => {
  const chunkedUpload = (headers: string[]) =>
    [
      'POST /api/v1/tenants HTTP/1.1',
      'Host: cp',
      'Content-Type: application/json',
      'Transfer-Encoding: chunked',
      ...headers,
      '',
      '',
    ].join('\r\n');

  it('answers an upload without a credential 401 and closes the connection, rather than read the rest', async () => {
    const exchange = sendHead(chunkedUpload([]));
    exchange.socket.write(`4000\r\n${'['.repeat(0x4000)}\r\n`);
    const answer = await exchange.finalHead;
    expect(answer).toMatch(/^HTTP\/1\.1 401 /);
    expect(answer).toMatch(/\r\nConnection: close\r\n/i);
    await exchange.closed;
  });

  it('answers an upload with a token the instance did not sign 401 and closes the connection', async () => {
    const forged = await signClerkToken(await createClerkTestKeys(), { userId: ADMIN });
    const exchange = sendHead(chunkedUpload([`Authorization: Bearer ${forged}`]));
    const answer = await exchange.finalHead;
    expect(answer).toMatch(/^HTTP\/1\.1 401 /);
    expect(answer).toMatch(/\r\nConnection: close\r\n/i);
    await exchange.closed;
  });

  // RFC 9112 §9.6: after an answer saying `Connection: close` the server processes no further request
  // of that connection. While the closed connection lingers, what the client sent behind the refused
  // upload is still read: a command in it would run, its answer never sent, and a client retrying it
  // (it was never answered) would run it twice.
  it('runs no request sent behind an upload it refused and closed the connection of', async () => {
    const serverSide = new Promise<Socket>((resolve) => server.once('connection', resolve));
    const exchange = sendHead(chunkedUpload([]), { halfOpen: true });
    const answer = await exchange.finalHead;
    expect(answer).toMatch(/^HTTP\/1\.1 401 .*\r\n(?:[^\r]+\r\n)*Connection: close\r\n/is);
    const token = await signClerkToken(keys, { userId: ADMIN });
    const body = JSON.stringify({ name: 'Behind a refusal', subdomain: 'behind-refusal' });
    const eventsBefore = (await store.readAll()).length;
    exchange.socket.write(
      [
        '0',
        '',
        'POST /api/v1/tenants HTTP/1.1',
        'Host: cp',
        'Content-Type: application/json',
        `Authorization: Bearer ${token}`,
        `Content-Length: ${Buffer.byteLength(body)}`,
        '',
        body,
      ].join('\r\n'),
    );
    // The connection is destroyed once its lingering close ends, long after the command would have run.
    const connection = await serverSide;
    if (!connection.destroyed) await new Promise((resolve) => connection.once('close', resolve));
    expect(await store.readAll()).toHaveLength(eventsBefore);
    expect(exchange.received()).not.toMatch(/HTTP\/1\.1 201 /);
  });

  it('keeps the connection of a refused request whose body arrived whole for the next request', async () => {
    const forged = await signClerkToken(await createClerkTestKeys(), { userId: ADMIN });
    const body = '{"name":"x"}';
    const exchange = sendHead(
      [
        'POST /api/v1/tenants HTTP/1.1',
        'Host: cp',
        'Content-Type: application/json',
        `Content-Length: ${body.length}`,
        `Authorization: Bearer ${forged}`,
        '',
        body,
      ].join('\r\n'),
    );
    const answer = await exchange.finalHead;
    expect(answer).toMatch(/^HTTP\/1\.1 401 /);
    expect(answer).toMatch(/\r\nConnection: keep-alive\r\n/i);
    exchange.socket.write('GET /healthz HTTP/1.1\r\nHost: cp\r\nConnection: close\r\n\r\n');
    await exchange.closed;
    expect(exchange.received()).toMatch(/HTTP\/1\.1 401 [\s\S]*HTTP\/1\.1 200 /);
  });
});

/**
 * A request names the host it is for once, as `host[:port]` (RFC 9112 §3.2): anything else is refused
 * by the admin API itself, in its error shape and marked as its own answer, never by node's bare 400.
 */
describe('the Host of admin API requests', () => {
  const healthz = (headers: string[], version = '1.1') =>
    sendHead([`GET /healthz HTTP/${version}`, ...headers, 'Connection: close', '', ''].join('\r\n'));

  it.each([
    ['no Host line', [] as string[], 'missing'],
    ['two Host lines', ['Host: cp.example.com', 'Host: other.example.com'], 'more than once'],
    ['a Host that is not host[:port]', ['Host: cp.example.com:@evil.example'], 'host[:port]'],
  ])('refuses an HTTP/1.1 request with %s: 400 naming the field', async (_case, headers, issue) => {
    const exchange = healthz(headers);
    await exchange.closed;
    const answer = exchange.received();
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer.toLowerCase()).toContain('x-vantageedge-internal: control-plane');
    expect(answer).toContain('"code":"validation_failed"');
    expect(answer).toContain('"field":"host"');
    expect(answer).toContain(issue);
  });

  it('answers an HTTP/1.0 request without Host (1.0 need not name one)', async () => {
    expect(await healthz([], '1.0').finalHead).toMatch(/^HTTP\/1\.1 200 /);
  });
});

/**
 * Requests node's parser refuses before the app sees them are answered in the admin API's error shape,
 * marked as its own answer, and the connection closed: never node's bare status line.
 */
describe('requests the admin API cannot read', () => {
  it.each([
    ['a request head over the header limit', `X-Big: ${'a'.repeat(20_000)}\r\n`, 431, 'headers_too_large'],
    ['two different Content-Lengths', 'Content-Length: 1\r\nContent-Length: 2\r\n', 400, 'malformed_request'],
  ])('answers %s with its status and code', async (_case, headers, status, code) => {
    const exchange = sendHead(`POST /api/v1/tenants HTTP/1.1\r\nHost: cp\r\n${headers}\r\n`);
    await exchange.closed;
    const answer = exchange.received();
    expect(answer).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
    expect(answer.toLowerCase()).toContain('x-vantageedge-internal: control-plane');
    expect(answer).toContain(`"code":"${code}"`);
  });
});
