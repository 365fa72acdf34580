import type { SpanLimits } from '@opentelemetry/sdk-trace-base';

/**
 * The most characters of one span attribute value sent to the collector (OpenTelemetry's
 * attributeValueLengthLimit, unlimited by default). Every tenant's spans share one process's export
 * queue (2048 spans) and batches (512), so a client sending request heads of the header limit's size (a
 * path, a Host, a user agent) would otherwise make each of its spans as large as its head.
 */
export const SPAN_ATTRIBUTE_VALUE_MAX = 2048;

/**
 * The SDK's span limits: SPAN_ATTRIBUTE_VALUE_MAX, unless the operator set
 * OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT or OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT (the SDK reads those itself).
 */
export function boundedSpanLimits(env: NodeJS.ProcessEnv = process.env): SpanLimits {
  const operatorSet =
    env['OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT'] !== undefined ||
    env['OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT'] !== undefined;
  return operatorSet ? {} : { attributeValueLengthLimit: SPAN_ATTRIBUTE_VALUE_MAX };
}
