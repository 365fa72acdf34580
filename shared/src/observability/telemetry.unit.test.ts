import { PassThrough } from 'node:stream';
import { trace } from '@opentelemetry/api';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { describe, expect, it } from 'vitest';
import { createLogger } from './logger.js';
import { SPAN_ATTRIBUTE_VALUE_MAX } from './span-limits.js';
import { startTelemetry } from './telemetry.js';

// One file, in order: the OpenTelemetry API keeps its tracer provider in a process-wide global.
describe('startTelemetry', () => {
  it('registers nothing when disabled: spans do not record and carry no trace id', async () => {
    const exporter = new InMemorySpanExporter();
    const telemetry = startTelemetry({ serviceName: 'svc-off', enabled: false, exporter });
    const span = trace.getTracer('test').startSpan('ignored');
    expect(span.isRecording()).toBe(false);
    expect(span.spanContext().traceId).toBe('00000000000000000000000000000000');
    span.end();
    await telemetry.forceFlush();
    await telemetry.shutdown();
    expect(exporter.getFinishedSpans()).toEqual([]);
  });

  it('records spans with the service name when enabled, and log lines carry their trace id', async () => {
    const exporter = new InMemorySpanExporter();
    const telemetry = startTelemetry({ serviceName: 'svc-on', enabled: true, exporter });
    const stream = new PassThrough();
    const logger = createLogger({ service: 'svc-on', stream });
    try {
      const traceId = trace.getTracer('test').startActiveSpan('handle request', (span) => {
        logger.info('inside the span');
        span.end();
        return span.spanContext().traceId;
      });
      await telemetry.forceFlush();

      const [recorded] = exporter.getFinishedSpans();
      expect(recorded?.name).toBe('handle request');
      expect(recorded?.spanContext().traceId).toBe(traceId);
      expect(recorded?.resource.attributes['service.name']).toBe('svc-on');

      const line = JSON.parse(String(stream.read())) as Record<string, unknown>;
      expect(line['trace_id']).toBe(traceId);
    } finally {
      await telemetry.shutdown();
    }
  });

  // The HTTP instrumentation records what the client sent (user agent, target, host) as it is.
  it('cuts long attribute values before they are queued for the collector', async () => {
    trace.disable(); // the previous test's provider stays registered after its shutdown
    const exporter = new InMemorySpanExporter();
    const telemetry = startTelemetry({ serviceName: 'svc-limits', enabled: true, exporter });
    try {
      const span = trace.getTracer('test').startSpan('GET');
      span.setAttribute('user_agent.original', 'x'.repeat(50_000));
      span.end();
      await telemetry.forceFlush();
      const [recorded] = exporter.getFinishedSpans();
      expect(String(recorded?.attributes['user_agent.original']).length).toBe(SPAN_ATTRIBUTE_VALUE_MAX);
    } finally {
      await telemetry.shutdown();
    }
  });
});
