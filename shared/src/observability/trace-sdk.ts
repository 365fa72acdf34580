import { DiagConsoleLogger, diag } from '@opentelemetry/api';
import { diagLogLevelFromString, getBooleanFromEnv, getStringFromEnv } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import {
  defaultResource,
  detectResources,
  envDetector,
  hostDetector,
  processDetector,
  type Resource,
  resourceFromAttributes,
} from '@opentelemetry/resources';
import { NodeTracerProvider, type SpanExporter, type SpanProcessor } from '@opentelemetry/sdk-trace-node';
import { boundedSpanLimits } from './span-limits.js';

export interface TraceSdk {
  /** Exports the spans ended so far. */
  forceFlush(): Promise<void>;
  /** Exports the queued spans, then stops exporting. */
  shutdown(): Promise<void>;
}

/**
 * Registers OpenTelemetry's trace SDK for this process: the tracer provider, AsyncLocalStorage context
 * and the W3C trace-context and baggage propagators, as @opentelemetry/sdk-node's NodeSDK would, without
 * its metrics and logs providers and its gRPC, protobuf, Zipkin and Prometheus exporters, which no
 * service uses. The SDK itself reads the standard settings: OTEL_TRACES_SAMPLER/_ARG, OTEL_BSP_*,
 * OTEL_SPAN_* and OTEL_ATTRIBUTE_* limits, OTEL_EXPORTER_OTLP_* (timeout, headers), and the resource's
 * OTEL_RESOURCE_ATTRIBUTES; OTEL_SDK_DISABLED and OTEL_LOG_LEVEL are read here.
 * Returns undefined (nothing registered) when OTEL_SDK_DISABLED is true.
 */
export function startTraceSdk(options: {
  serviceName: string;
  /** Run in order as each span starts and ends; the last is usually the exporting batch processor. */
  spanProcessors: SpanProcessor[];
}): TraceSdk | undefined {
  if (getBooleanFromEnv('OTEL_SDK_DISABLED')) return undefined;
  logSdkDiagnosticsFromEnv();
  const provider = new NodeTracerProvider({
    resource: processResource(options.serviceName),
    spanLimits: boundedSpanLimits(),
    spanProcessors: options.spanProcessors,
  });
  provider.register();
  return { forceFlush: () => provider.forceFlush(), shutdown: () => provider.shutdown() };
}

/** OTLP/HTTP (JSON) to `<endpoint>/v1/traces`; without an endpoint, OTEL_EXPORTER_OTLP_*ENDPOINT or the default. */
export function otlpHttpTraceExporter(endpoint: string | undefined): SpanExporter {
  return new OTLPTraceExporter(endpoint ? { url: `${endpoint.replace(/\/$/, '')}/v1/traces` } : {});
}

/** The SDK's own, OTEL_RESOURCE_ATTRIBUTES, the process and the host, then the service's name over all. */
function processResource(serviceName: string): Resource {
  return defaultResource()
    .merge(detectResources({ detectors: [envDetector, processDetector, hostDetector] }))
    .merge(resourceFromAttributes({ 'service.name': serviceName }));
}

function logSdkDiagnosticsFromEnv(): void {
  const level = getStringFromEnv('OTEL_LOG_LEVEL');
  if (level !== undefined) diag.setLogger(new DiagConsoleLogger(), diagLogLevelFromString(level));
}
