import type { Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { type ControlPlaneListenerOptions, listenControlPlane } from './listener.js';

/**
 * The admin API's listener as an attacker sees it. Regression tests: it was a bare `app.listen`, so one
 * client (every tenant admin, anyone on the internet) could hold any number of idle connections and
 * trickle a request head for node's 60 s each, until the process ran out of file descriptors and no
 * tenant could reach the admin API.
 */
const DEFAULTS: ControlPlaneListenerOptions = {
  host: '127.0.0.1',
  port: 0,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 60_000,
  keepAliveTimeoutMs: 5_000,
  maxConnections: 1_000,
  maxConnectionsPerClient: 100,
};

let server: Server | undefined;
const sockets: Socket[] = [];

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

async function listen(options: Partial<ControlPlaneListenerOptions>): Promise<number> {
  const app = express();
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  server = await listenControlPlane(app, { ...DEFAULTS, ...options });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

interface Client {
  socket: Socket;
  closed: Promise<void>;
  received: () => string;
}

async function open(port: number): Promise<Client> {
  const socket = connect(port, '127.0.0.1');
  sockets.push(socket);
  let data = '';
  socket.on('data', (chunk: Buffer) => {
    data += chunk.toString('latin1');
  });
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return { socket, closed, received: () => data };
}

/** Whether the socket is closed by the server before a request on another connection is answered. */
async function healthz(port: number): Promise<string> {
  const client = await open(port);
  client.socket.write('GET /healthz HTTP/1.1\r\nHost: cp\r\nConnection: close\r\n\r\n');
  await client.closed;
  return client.received();
}

describe('control-plane listener', () => {
  it('closes the connections of one client address beyond CONTROL_PLANE_MAX_CONNECTIONS_PER_CLIENT on arrival', async () => {
    const port = await listen({ maxConnectionsPerClient: 5 });
    const held = await Promise.all(Array.from({ length: 5 }, () => open(port)));
    const extra = await open(port);
    await extra.closed;
    expect(extra.received()).toBe('');
    expect(held.every((client) => !client.socket.destroyed)).toBe(true);
    // Once one is given back, the client may connect again.
    held[0]?.socket.destroy();
    await held[0]?.closed;
    await expect.poll(() => healthz(port)).toMatch(/^HTTP\/1\.1 200 /);
  });

  it('does not hold a peer in CONTROL_PLANE_TRUSTED_PROXIES (a load balancer) to the per-client cap', async () => {
    const port = await listen({ maxConnectionsPerClient: 2, trustedProxies: ['127.0.0.1/32'] });
    const held = await Promise.all(Array.from({ length: 4 }, () => open(port)));
    expect(await healthz(port)).toMatch(/^HTTP\/1\.1 200 /);
    expect(held.every((client) => !client.socket.destroyed)).toBe(true);
  });

  it('closes connections beyond CONTROL_PLANE_MAX_CONNECTIONS on arrival', async () => {
    const port = await listen({ maxConnections: 3, maxConnectionsPerClient: 0 });
    await Promise.all(Array.from({ length: 3 }, () => open(port)));
    const extra = await open(port);
    await extra.closed;
    expect(extra.received()).toBe('');
  });

  it('cuts a client trickling its request head at CONTROL_PLANE_HEADERS_TIMEOUT_MS with a 408', async () => {
    const port = await listen({ headersTimeoutMs: 500, requestTimeoutMs: 1_000 });
    const client = await open(port);
    client.socket.write('GET /healthz HTTP/1.1\r\nHost: cp\r\n');
    let line = 0;
    const trickle = setInterval(() => {
      line += 1;
      if (!client.socket.destroyed) client.socket.write(`X-Trickle-${line}: ${line}\r\n`);
    }, 100);
    try {
      await client.closed;
    } finally {
      clearInterval(trickle);
    }
    expect(client.received()).toMatch(/^HTTP\/1\.1 408 /);
  }, 10_000);

  it('cuts a client trickling its body at CONTROL_PLANE_REQUEST_TIMEOUT_MS', async () => {
    const port = await listen({ headersTimeoutMs: 500, requestTimeoutMs: 1_000 });
    const client = await open(port);
    client.socket.write('POST /healthz HTTP/1.1\r\nHost: cp\r\nContent-Length: 1000\r\n\r\n');
    const drip = setInterval(() => {
      if (!client.socket.destroyed) client.socket.write('x');
    }, 100);
    try {
      await client.closed;
    } finally {
      clearInterval(drip);
    }
  }, 10_000);
  it('closes an idle keep-alive connection that sends only blank lines', async () => {
    const port = await listen({ keepAliveTimeoutMs: 300, headersTimeoutMs: 500, requestTimeoutMs: 1_000 });
    const client = await open(port);
    client.socket.write('GET /healthz HTTP/1.1\r\nHost: cp\r\n\r\n');
    await expect.poll(() => client.received()).toMatch(/^HTTP\/1\.1 200 /);
    const blank = setInterval(() => {
      if (!client.socket.destroyed) client.socket.write('\r\n');
    }, 100);
    try {
      await client.closed;
    } finally {
      clearInterval(blank);
    }
  }, 15_000);
});
