import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { offlineAppDeps } from '../testing/offline-app.js';
import { createControlPlaneApp } from './app.js';
import { listenControlPlane } from './listener.js';

/**
 * The admin API's listener, as a client with no credential uses it: node hands over every request one
 * read parses, so pipelined requests ran all at once. 1,500 GETs of /docs in one 46 KB write each made
 * a 4.9 MB copy of the page waiting for a client that never read (7 GB); console files opened for answers
 * that never got the socket stayed open after the client left (a few connections exhausted the process's
 * file descriptors for good). And a client that read none of its answer kept its connection for ever.
 */
const SEND_TIMEOUT_MS = 500;
const consoleDir = mkdtempSync(path.join(tmpdir(), 'pipelined-console-'));
mkdirSync(path.join(consoleDir, 'assets'));
writeFileSync(path.join(consoleDir, 'index.html'), '<html></html>');
writeFileSync(path.join(consoleDir, 'assets', 'app.js'), 'a'.repeat(1_000_000));
const deps = offlineAppDeps({ console: { directory: consoleDir, clerkPublishableKey: undefined } });
let server: Server;
let port = 0;

beforeAll(async () => {
  server = await listenControlPlane(createControlPlaneApp(deps), {
    host: '127.0.0.1',
    port: 0,
    headersTimeoutMs: 10_000,
    requestTimeoutMs: 60_000,
    keepAliveTimeoutMs: 5_000,
    sendTimeoutMs: SEND_TIMEOUT_MS,
    maxConnections: 10_000,
    maxConnectionsPerClient: 1_000,
  });
  port = (server.address() as { port: number }).port;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await deps.close();
});

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A connection that writes `count` pipelined GETs of `target` at once and reads nothing. */
async function pipelined(target: string, count: number): Promise<Socket> {
  const socket = connect(port, '127.0.0.1');
  socket.pause();
  socket.on('error', () => {});
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write(`GET ${target} HTTP/1.1\r\nHost: a\r\n\r\n`.repeat(count));
  return socket;
}

const openFileDescriptors = () => readdirSync('/proc/self/fd').length;

describe('pipelined requests on the admin API listener', () => {
  it('leave no console file open once their client left', async () => {
    const before = openFileDescriptors();
    const socket = await pipelined('/console/assets/app.js', 200);
    await pause(1_000);
    socket.destroy();
    await pause(1_000);
    expect(openFileDescriptors() - before).toBeLessThan(10);
  }, 30_000);

  it('hold a few answers of /docs, not one copy of the page each', async () => {
    const before = process.memoryUsage().arrayBuffers;
    let peak = before;
    const sample = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().arrayBuffers);
    }, 50);
    const socket = await pipelined('/docs', 100);
    await pause(2_000);
    clearInterval(sample);
    socket.destroy();
    expect(peak - before).toBeLessThan(50_000_000);
  }, 30_000);

  it('still answer an upgrade request as any request (the listener switches no protocol)', async () => {
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => {});
    await new Promise((resolve) => socket.once('connect', resolve));
    const answered = new Promise<string>((resolve) =>
      socket.once('data', (data: Buffer) => resolve(data.toString('latin1').split('\r\n')[0] ?? '')),
    );
    socket.write(
      'GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
        'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    );
    const line = await Promise.race([answered, pause(5_000).then(() => 'no answer')]);
    socket.destroy();
    expect(line).toBe('HTTP/1.1 200 OK');
  }, 30_000);

  it('close the connection of a client that takes none of its answer for the send timeout', async () => {
    const connections = () =>
      new Promise<number>((resolve) => server.getConnections((_error, count) => resolve(count)));
    // The connections of the tests before have closed.
    for (let waited = 0; waited < 5_000 && (await connections()) > 0; waited += 50) await pause(50);
    const before = await connections();
    const socket = await pipelined('/docs', 1);
    // The client reads nothing (a paused socket does not even see the server's FIN): the server's count says.
    await pause(100);
    expect(await connections()).toBe(before + 1);
    let open = before + 1;
    for (let waited = 0; waited < 20 * SEND_TIMEOUT_MS && open > before; waited += 100) {
      await pause(100);
      open = await connections();
    }
    socket.destroy();
    expect(open).toBe(before);
  }, 30_000);
});
