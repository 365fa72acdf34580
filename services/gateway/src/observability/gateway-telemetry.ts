import { BatchSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-node';
import { otlpHttpTraceExporter, startTraceSdk } from '@vantageedge/shared/observability/trace-sdk';

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
  const off = { enabled: false, shutdown: async () => {} };
  if (!options.enabled) return off;
  const sdk = startTraceSdk({
    serviceName: options.serviceName,
    spanProcessors: [new BatchSpanProcessor(options.exporter ?? otlpHttpTraceExporter(options.otlpEndpoint))],
  });
  return sdk ? { enabled: true, shutdown: () => sdk.shutdown() } : off;
}
