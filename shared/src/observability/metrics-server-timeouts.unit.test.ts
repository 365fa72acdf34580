import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createMetricsRegistry } from './metrics.js';
import { type MetricsServer, startMetricsServer } from './metrics-server.js';

/**
 * Regression: the metrics listener (the projectors' only HTTP surface, what their container healthchecks
 * probe) kept node's defaults, so a client trickling a request head held its connection for a minute
 * (node looks for expired heads every 30 s, past a 60 s headers timeout).
 */
let server: MetricsServer | undefined;
let socket: Socket | undefined;
afterEach(async () => {
  socket?.destroy();
  await server?.close();
  server = undefined;
});

describe('metrics listener', () => {
  it('cuts a client trickling its request head with a 408', async () => {
    server = await startMetricsServer({
      registry: createMetricsRegistry('metrics-timeouts', { defaultMetrics: false }),
      host: '127.0.0.1',
      port: 0,
      service: 'projector',
    });
    const client = connect(server.port, '127.0.0.1');
    socket = client;
    client.on('error', () => {});
    let received = '';
    client.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
    });
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    client.write('GET /metrics HTTP/1.1\r\nHost: metrics\r\n');
    let line = 0;
    const trickle = setInterval(() => {
      line += 1;
      if (!client.destroyed) client.write(`X-Trickle-${line}: ${line}\r\n`);
    }, 200);
    try {
      await closed;
    } finally {
      clearInterval(trickle);
    }
    expect(received).toMatch(/^HTTP\/1\.1 408 /);
  }, 20_000);
});
