import { connect } from 'node:net';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MetricsServer, startMetricsServer } from './metrics-server.js';

/**
 * A metrics listener renders the whole registry for each GET /metrics. node hands over every request one
 * read parses: one write of 200 pipelined GETs rendered it 200 times at once, each answer (here 1 MB)
 * waiting for a client that read none. A connection's requests now run one after another.
 */
const EXPOSITION = `# ${'x'.repeat(1_000_000)}\n`;

let server: MetricsServer;
let rendered = 0;

beforeAll(async () => {
  const registry = new Registry();
  registry.metrics = async () => {
    rendered++;
    return EXPOSITION;
  };
  server = await startMetricsServer({ registry, host: '127.0.0.1', port: 0, service: 'projector' });
});

afterAll(async () => {
  await server?.close();
});

describe('pipelined scrapes', () => {
  it('render the registry a few times, not once per request parsed', async () => {
    const socket = connect(server.port, '127.0.0.1');
    socket.pause();
    socket.on('error', () => {});
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write('GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n'.repeat(200));
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    socket.destroy();
    expect(rendered).toBeLessThan(40);
  });
});
