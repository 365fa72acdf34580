import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INTERNAL_LISTENER_HEADER } from '../http/internal-listener.js';
import { type MetricsServer, startMetricsServer } from './metrics-server.js';

let server: MetricsServer;
beforeAll(async () => {
  server = await startMetricsServer({
    registry: new Registry(),
    host: '127.0.0.1',
    port: 0,
    service: 'projector',
  });
});
afterAll(async () => {
  await server?.close();
});

describe("a service's metrics server", () => {
  // Regression: a tenant whose origin named a projector's metrics server read its /metrics through a
  // gateway. Every answer is marked, and gateways never relay a marked answer.
  it('marks every answer as an internal listener’s: metrics, probe, 404 and 405', async () => {
    const base = `http://127.0.0.1:${server.port}`;
    const answers = await Promise.all([
      fetch(`${base}/metrics`),
      fetch(`${base}/healthz`),
      fetch(`${base}/nothing`),
      fetch(`${base}/metrics`, { method: 'POST' }),
    ]);
    expect(answers.map((answer) => answer.status)).toEqual([200, 200, 404, 405]);
    expect(answers.map((answer) => answer.headers.get(INTERNAL_LISTENER_HEADER))).toEqual(
      answers.map(() => 'projector'),
    );
  });
});
