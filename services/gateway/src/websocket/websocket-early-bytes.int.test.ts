import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { eventually } from '@vantageedge/shared/snapshot-bus/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { connectRaw } from '../testing/raw-connections.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { MAX_EARLY_CLIENT_BYTES } from './early-client-bytes.js';

/**
 * A client's connection is read while its upgrade waits for the origin: what it sends before the 101
 * reaches the origin once they are paired (within MAX_EARLY_CLIENT_BYTES), and a client that leaves is
 * seen at once (its origin request is not kept until the origin answers or times out).
 */
describe('WebSocket upgrades waiting for the origin', () => {
  let origin: Server;
  let gateway: TestGateway;
  /** What the origin received on each switched WebSocket, by request path. */
  const received = new Map<string, string>();
  /** Upgrades the origin has not answered yet. */
  const waiting = new Map<string, Socket>();

  beforeAll(async () => {
    origin = createServer((_req, res) => res.end('plain'));
    origin.on('upgrade', (req, socket: Socket) => {
      const path = req.url ?? '';
      received.set(path, '');
      socket.on('data', (chunk: Buffer) => received.set(path, received.get(path) + chunk.toString()));
      socket.on('error', () => {});
      waiting.set(path, socket);
    });
    await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
    gateway = await startTestGateway();
    const originId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        subdomain: 'early',
        origins: [{ id: originId, targets: [`http://127.0.0.1:${(origin.address() as AddressInfo).port}`] }],
        routes: [{ origin_id: originId, path_pattern: '/ws/*' }],
      }),
    );
  });

  afterAll(async () => {
    for (const socket of waiting.values()) socket.destroy();
    await gateway?.close();
    origin?.closeAllConnections();
    await new Promise((resolve) => origin?.close(resolve));
  });

  const upgrade = (path: string) =>
    `GET ${path} HTTP/1.1\r\nHost: early.localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
    'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n';
  const switchOn = (path: string) =>
    waiting
      .get(path)!
      .write(
        'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          'Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n',
      );

  it('hands what the client sent before the 101 to the origin once they are paired', async () => {
    const client = await connectRaw('plain', gateway.gateway.trafficPort);
    client.socket.write(`${upgrade('/ws/early')}first`);
    await eventually('the origin has the upgrade', () => waiting.has('/ws/early'));
    client.socket.write('-second');
    await new Promise((resolve) => setTimeout(resolve, 50));
    switchOn('/ws/early');
    await eventually('the client is switched', () => client.received().includes('101 Switching Protocols'));
    client.socket.write('-after');
    await eventually('the origin has every byte', () => received.get('/ws/early') === 'first-second-after');
    client.socket.destroy();
  });

  it('closes a client that sends more than MAX_EARLY_CLIENT_BYTES before the 101', async () => {
    const client = await connectRaw('plain', gateway.gateway.trafficPort);
    client.socket.write(upgrade('/ws/flood'));
    await eventually('the origin has the upgrade', () => waiting.has('/ws/flood'));
    client.socket.write(Buffer.alloc(MAX_EARLY_CLIENT_BYTES + 1, 'x'));
    await client.closed;
    expect(client.received()).not.toContain('101');
  });

  it('lets the origin request go when the client leaves before the 101', async () => {
    const client = await connectRaw('plain', gateway.gateway.trafficPort);
    client.socket.write(upgrade('/ws/gone'));
    await eventually('the origin has the upgrade', () => waiting.has('/ws/gone'));
    const originSide = waiting.get('/ws/gone')!;
    const ended = new Promise((resolve) => originSide.once('end', resolve));
    client.socket.end();
    await client.closed;
    await ended;
  });
});
