import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
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
 * API its SERVER spans, the projectors their batches).
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
    instrumentations: [],
  });
  sdk.start();
  return { forceFlush: () => processor.forceFlush(), shutdown: () => sdk.shutdown() };
}
