import { BatchSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-node';
import { DetachedAttributesProcessor } from './detached-attributes.js';
import { otlpHttpTraceExporter, startTraceSdk } from './trace-sdk.js';

export interface TelemetryOptions {
  serviceName: string;
  enabled: boolean;
  /** OTLP/HTTP endpoint base, e.g. http://127.0.0.1:4318; /v1/traces is appended. */
  otlpEndpoint?: string | undefined;
  /** Tests pass an in-memory exporter. */
  exporter?: SpanExporter;
}

export interface Telemetry {
  /** Exports the spans ended so far (the batch processor otherwise waits up to 5 s). */
  forceFlush(): Promise<void>;
  shutdown(): Promise<void>;
}

/**
 * Starts the OpenTelemetry SDK. Off by default: then nothing is registered and the API's no-op tracer
 * costs almost nothing. It registers no auto-instrumentation: OpenTelemetry's HTTP instrumentation
 * patches `node:http` only when it is required after the SDK started, which never happens in our ES
 * modules (bundled for production), so each service starts its own spans (the control plane's admin
 * API its SERVER spans, the projectors their batches, and under them CLIENT spans for their PostgreSQL
 * statements, Redis commands and Kafka sends: client-span.ts).
 */
export function startTelemetry(options: TelemetryOptions): Telemetry {
  const off = { forceFlush: async () => {}, shutdown: async () => {} };
  if (!options.enabled) return off;
  const processor = new BatchSpanProcessor(options.exporter ?? otlpHttpTraceExporter(options.otlpEndpoint));
  const sdk = startTraceSdk({
    serviceName: options.serviceName,
    spanProcessors: [new DetachedAttributesProcessor(), processor],
  });
  return sdk ? { forceFlush: () => processor.forceFlush(), shutdown: () => sdk.shutdown() } : off;
}
