import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { BatchSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { boundedSpanLimits } from '@vantageedge/shared/observability/span-limits';

export interface GatewayTelemetry {
  readonly enabled: boolean;
  shutdown(): Promise<void>;
}

/**
 * The gateway's OpenTelemetry SDK. Unlike the shared startTelemetry it registers no HTTP
 * instrumentation: the pipeline makes its own SERVER span (a new trace unless the caller is a
 * trusted proxy, see RequestTracing) and child spans per stage, and an auto-instrumented server span
 * would double every request. The sampler is the SDK's, from OTEL_TRACES_SAMPLER/_ARG.
 */
export function startGatewayTelemetry(options: {
  enabled: boolean;
  serviceName: string;
  otlpEndpoint?: string | undefined;
  exporter?: SpanExporter;
}): GatewayTelemetry {
  if (!options.enabled) return { enabled: false, shutdown: async () => {} };
  const exporter =
    options.exporter ??
    new OTLPTraceExporter(
      options.otlpEndpoint ? { url: `${options.otlpEndpoint.replace(/\/$/, '')}/v1/traces` } : {},
    );
  const sdk = new NodeSDK({
    serviceName: options.serviceName,
    spanLimits: boundedSpanLimits(),
    spanProcessors: [new BatchSpanProcessor(exporter)],
    instrumentations: [],
  });
  sdk.start();
  return { enabled: true, shutdown: () => sdk.shutdown() };
}
