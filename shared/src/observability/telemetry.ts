import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { BatchSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { DetachedAttributesProcessor } from './detached-attributes.js';
import { boundedSpanLimits } from './span-limits.js';

export interface TelemetryOptions {
  serviceName: string;
  enabled: boolean;
  /** OTLP/HTTP endpoint base, e.g. http://127.0.0.1:4318; the SDK appends /v1/traces. */
  otlpEndpoint?: string | undefined;
  /** Tests pass an in-memory exporter. */
  exporter?: SpanExporter;
  /** SERVER/CLIENT spans for node:http (default true); projectors trace their batches instead. */
  instrumentHttp?: boolean;
}

export interface Telemetry {
  /** Exports the spans ended so far (the batch processor otherwise waits up to 5 s). */
  forceFlush(): Promise<void>;
  shutdown(): Promise<void>;
}

/**
 * Starts the OpenTelemetry SDK. Each service calls this first, before importing code it should
 * instrument. Off by default: then nothing is registered and the API's no-op tracer costs almost nothing.
 */
export function startTelemetry(options: TelemetryOptions): Telemetry {
  if (!options.enabled) return { forceFlush: async () => {}, shutdown: async () => {} };
  const exporter =
    options.exporter ??
    new OTLPTraceExporter(
      options.otlpEndpoint ? { url: `${options.otlpEndpoint.replace(/\/$/, '')}/v1/traces` } : {},
    );
  const processor = new BatchSpanProcessor(exporter);
  const sdk = new NodeSDK({
    serviceName: options.serviceName,
    spanLimits: boundedSpanLimits(),
    spanProcessors: [new DetachedAttributesProcessor(), processor],
    instrumentations: options.instrumentHttp === false ? [] : [new HttpInstrumentation()],
  });
  sdk.start();
  return { forceFlush: () => processor.forceFlush(), shutdown: () => sdk.shutdown() };
}
