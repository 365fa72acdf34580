import { randomUUID } from 'node:crypto';
import { SpanKind } from '@opentelemetry/api';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  send,
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { type GatewayTelemetry, startGatewayTelemetry } from './gateway-telemetry.js';

type ExportResult = Parameters<Parameters<SpanExporter['export']>[1]>[0];

/** With tracing on, a request yields a SERVER span continuing the caller's trace and an upstream child span. */
describe('request tracing', () => {
  // Keeps spans after shutdown (InMemorySpanExporter clears them when the SDK shuts down).
  const finished: ReadableSpan[] = [];
  const exporter: SpanExporter = {
    export(spans: ReadableSpan[], done: (result: ExportResult) => void) {
      finished.push(...spans);
      done({ code: 0 });
    },
    shutdown: async () => {},
  };
  let telemetry: GatewayTelemetry;
  let origin: TestOrigin;
  let gateway: TestGateway;
  const tenantId = randomUUID();

  beforeAll(async () => {
    telemetry = startGatewayTelemetry({ enabled: true, serviceName: 'gateway-test', exporter });
    origin = await startTestOrigin('traced');
    gateway = await startTestGateway({}, { tracingEnabled: true });
    const originId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        tenantId,
        subdomain: 'traced',
        origins: [{ id: originId, targets: [origin.url] }],
        routes: [{ origin_id: originId, path_pattern: '/orders/*' }],
      }),
    );
  });

  afterAll(async () => {
    await gateway?.close();
    await origin?.close();
  });

  it('continues the caller traceparent and propagates the upstream span to the origin', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const response = await send(gateway, 'traced.localhost', '/orders/42?expand=items', {
      headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` },
    });
    expect(response.status).toBe(200);
    // The server span ends when the response closes, together with the access-log line.
    await vi.waitFor(() => expect(gateway.logLines.some((line) => line['trace_id'] === traceId)).toBe(true));
    await telemetry.shutdown(); // flushes the batch processor
    const spans = finished.filter((span) => span.spanContext().traceId === traceId);
    const server = spans.find((span) => span.kind === SpanKind.SERVER);
    const upstream = spans.find((span) => span.kind === SpanKind.CLIENT);
    expect(server?.parentSpanContext?.spanId).toBe('00f067aa0ba902b7');
    expect(server?.attributes['vantageedge.tenant.id']).toBe(tenantId);
    expect(server?.attributes['http.response.status_code']).toBe(200);
    expect(upstream?.parentSpanContext?.spanId).toBe(server?.spanContext().spanId);
    // Regression: the server span was named "GET gateway" with only the status attribute, and the
    // upstream CLIENT span had no attributes; both follow the OTel HTTP semantic conventions now.
    expect(server?.name).toBe('GET /orders/*');
    expect(server?.attributes).toMatchObject({
      'http.request.method': 'GET',
      'url.path': '/orders/42',
      'http.route': '/orders/*',
      'server.address': 'traced.localhost',
      'http.response.status_code': 200,
    });
    const originUrl = new URL(origin.url);
    expect(upstream?.name).toBe('GET');
    expect(upstream?.attributes).toMatchObject({
      'http.request.method': 'GET',
      'server.address': originUrl.hostname,
      'server.port': Number(originUrl.port),
      'http.response.status_code': 200,
    });
    expect(spans.some((span) => span.name === 'auth')).toBe(true);
    const sent = (response.json()['headers'] as Record<string, string>)['traceparent'];
    expect(sent).toBe(`00-${traceId}-${upstream?.spanContext().spanId}-01`);
  });
});
