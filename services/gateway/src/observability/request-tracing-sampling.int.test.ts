import { randomUUID } from 'node:crypto';
import { SpanKind } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { collectingExporter, flushSpans } from '../testing/collected-spans.js';
import {
  send,
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { type GatewayTelemetry, startGatewayTelemetry } from './gateway-telemetry.js';

/**
 * The operator samples no trace the gateway starts (OTEL_TRACES_SAMPLER=parentbased_traceidratio,
 * arg 0, read by the trace SDK). A client's sampled flag must not override that; a trusted proxy's does.
 */
describe('request tracing sampling', () => {
  const finished: ReadableSpan[] = [];
  const exporter = collectingExporter(finished);
  const savedEnv = {
    sampler: process.env['OTEL_TRACES_SAMPLER'],
    arg: process.env['OTEL_TRACES_SAMPLER_ARG'],
  };
  let telemetry: GatewayTelemetry;
  let origin: TestOrigin;
  let edge: TestGateway;
  let behindProxy: TestGateway;

  async function startTracedGateway(env: Record<string, string> = {}): Promise<TestGateway> {
    const gateway = await startTestGateway(env, { tracingEnabled: true });
    const originId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        subdomain: 'sampled',
        origins: [{ id: originId, targets: [origin.url] }],
        routes: [{ origin_id: originId, path_pattern: '/api/*' }],
      }),
    );
    return gateway;
  }

  beforeAll(async () => {
    process.env['OTEL_TRACES_SAMPLER'] = 'parentbased_traceidratio';
    process.env['OTEL_TRACES_SAMPLER_ARG'] = '0';
    telemetry = startGatewayTelemetry({ enabled: true, serviceName: 'gateway-test', exporter });
    origin = await startTestOrigin('sampled');
    edge = await startTracedGateway();
    // The test client connects from 127.0.0.1: here it stands for a load balancer in front.
    behindProxy = await startTracedGateway({ GATEWAY_TRUSTED_PROXIES: '127.0.0.1/32' });
  });

  afterAll(async () => {
    await edge?.close();
    await behindProxy?.close();
    await origin?.close();
    await telemetry?.shutdown();
    for (const [name, value] of [
      ['OTEL_TRACES_SAMPLER', savedEnv.sampler],
      ['OTEL_TRACES_SAMPLER_ARG', savedEnv.arg],
    ] as const) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });

  // Regression: every request sent with `-01` was recorded and exported, and `-01` went on to the origin.
  it("keeps the operator's sampling decision for an untrusted client that sends sampled=1", async () => {
    const clientTraceIds: string[] = [];
    for (let i = 0; i < 10; i++) {
      const clientTraceId = randomUUID().replaceAll('-', '');
      clientTraceIds.push(clientTraceId);
      const response = await send(edge, 'sampled.localhost', `/api/forced/${i}`, {
        headers: { traceparent: `00-${clientTraceId}-bbbbbbbbbbbbbbbb-01` },
      });
      expect(response.status).toBe(200);
      const sent = (response.json()['headers'] as Record<string, string>)['traceparent'];
      expect(sent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
      expect(sent).not.toContain(clientTraceId);
    }
    await vi.waitFor(
      () => expect(edge.logLines.filter((line) => line['kind'] === 'access').length).toBe(10),
      { timeout: 10_000 },
    );
    await flushSpans();
    const forced = finished.filter((span) => String(span.attributes['url.path']).startsWith('/api/forced'));
    expect(forced).toEqual([]);
    expect(finished.some((span) => clientTraceIds.includes(span.spanContext().traceId))).toBe(false);
  });

  it("follows a trusted proxy's sampled flag", async () => {
    const traceId = randomUUID().replaceAll('-', '');
    const response = await send(behindProxy, 'sampled.localhost', '/api/proxied', {
      headers: { traceparent: `00-${traceId}-bbbbbbbbbbbbbbbb-01` },
    });
    expect(response.status).toBe(200);
    const sent = (response.json()['headers'] as Record<string, string>)['traceparent'];
    expect(sent).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
    await vi.waitFor(
      () => expect(behindProxy.logLines.some((line) => line['kind'] === 'access')).toBe(true),
      { timeout: 10_000 },
    );
    await flushSpans();
    const server = finished.find(
      (span) => span.kind === SpanKind.SERVER && span.spanContext().traceId === traceId,
    );
    expect(server?.attributes['url.path']).toBe('/api/proxied');
  });
});
