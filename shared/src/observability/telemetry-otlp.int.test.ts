import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { trace } from '@opentelemetry/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTelemetry } from './telemetry.js';

/** The OTLP/HTTP exporter really sends to the configured endpoint (a local stand-in collector). */
describe('startTelemetry with an OTLP endpoint', () => {
  const received: Array<{ path: string; contentType: string; bytes: number }> = [];
  const collector = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      received.push({
        path: req.url ?? '',
        contentType: String(req.headers['content-type']),
        bytes: Buffer.concat(chunks).length,
      });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });

  beforeAll(async () => {
    await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    await new Promise((resolve) => collector.close(resolve));
  });

  it('exports finished spans to <endpoint>/v1/traces', async () => {
    const { port } = collector.address() as AddressInfo;
    const telemetry = startTelemetry({
      serviceName: 'svc-otlp',
      enabled: true,
      otlpEndpoint: `http://127.0.0.1:${port}/`,
    });
    try {
      trace.getTracer('test').startSpan('exported').end();
      await telemetry.forceFlush();
      expect(received).toHaveLength(1);
      expect(received[0]?.path).toBe('/v1/traces');
      expect(received[0]?.bytes).toBeGreaterThan(0);
    } finally {
      await telemetry.shutdown();
    }
  });
});
