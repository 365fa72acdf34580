import { PassThrough } from 'node:stream';
import { trace } from '@opentelemetry/api';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { describe, expect, it } from 'vitest';
import { liveHeapBytes } from '../testing/live-memory.js';
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

  // A SERVER span records what the client sent (target, host), which may be as long as its head.
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

  // A cut value must not keep the whole value it was cut from: spans wait in the export queue (up to
  // 2048 of them) long after their request was answered.
  it('regression: queued spans hold no more of long header values than the cut they keep', async () => {
    trace.disable();
    const exporter = new InMemorySpanExporter();
    const telemetry = startTelemetry({ serviceName: 'svc-queued', enabled: true, exporter });
    const spans = 300;
    const queue = (valueLength: number, seed: string) => {
      for (let i = 0; i < spans; i++) {
        const span = trace.getTracer('test').startSpan('GET');
        // Distinct strings, as every request's header is its own.
        span.setAttribute('user_agent.original', `${seed}-${i}-`.padEnd(valueLength, 'u'));
        span.end();
      }
    };
    try {
      const before = liveHeapBytes();
      queue(SPAN_ATTRIBUTE_VALUE_MAX, 'cut-size');
      const afterCutSize = liveHeapBytes();
      queue(64 * 1024, 'header-size');
      const afterLong = liveHeapBytes();
      const ofCutSizeValues = afterCutSize - before;
      const ofLongValues = afterLong - afterCutSize;
      expect(
        ofLongValues,
        `${spans} spans of 64 KiB values hold ${ofLongValues} bytes, of 2 KiB values ${ofCutSizeValues}`,
      ).toBeLessThan(2 * ofCutSizeValues + 1024 * 1024);
      await telemetry.forceFlush();
      const recorded = exporter.getFinishedSpans();
      expect(recorded).toHaveLength(2 * spans);
      for (const span of recorded)
        expect(String(span.attributes['user_agent.original']).length).toBe(SPAN_ATTRIBUTE_VALUE_MAX);
      expect(String(recorded.at(-1)?.attributes['user_agent.original'])).toMatch(/^header-size-299-u+$/);
    } finally {
      await telemetry.shutdown();
    }
  });
});
