import { type Span, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { startTelemetry, type Telemetry } from '../observability/telemetry.js';

export interface RecordedSpans {
  readonly telemetry: Telemetry;
  readonly exporter: InMemorySpanExporter;
  /** Runs `work` as the active span `name`, ended when it settles; returns the span's id. */
  underSpan(name: string, work: () => Promise<unknown>): Promise<string>;
  /** Every span ended so far, once the batch processor has exported them. */
  finished(): Promise<ReadableSpan[]>;
}

/**
 * Starts the services' telemetry with its spans kept in memory, and a tracer of the test's own to make
 * the span a request or batch would be active under.
 */
export function recordSpans(serviceName: string): RecordedSpans {
  const exporter = new InMemorySpanExporter();
  const telemetry = startTelemetry({ serviceName, enabled: true, exporter });
  const tracer = trace.getTracer(serviceName);
  return {
    telemetry,
    exporter,
    underSpan: (name, work) =>
      tracer.startActiveSpan(name, async (span: Span) => {
        try {
          await work();
        } catch {
          // the work's failure is what a test looks at, in the spans it made
        } finally {
          span.end();
        }
        return span.spanContext().spanId;
      }),
    finished: async () => {
      await telemetry.forceFlush();
      return exporter.getFinishedSpans();
    },
  };
}

export function childrenOf(spans: readonly ReadableSpan[], parentSpanId: string): ReadableSpan[] {
  return spans.filter((span) => span.parentSpanContext?.spanId === parentSpanId);
}
