import { SpanStatusCode, trace } from '@opentelemetry/api';
import type { RecordedEvent } from '@vantageedge/shared/event-store/port';

const tracer = trace.getTracer('vantageedge-projections');

/**
 * Runs one projector batch inside a span (`<projection> batch`) that records how many events it
 * applied and which positions they span; a failed batch is marked as an error. Without a registered
 * tracer provider (OTEL_ENABLED=false) this is the API's no-op span.
 */
export function traceBatch<T>(
  projection: string,
  events: readonly RecordedEvent[],
  run: () => Promise<T>,
): Promise<T> {
  return tracer.startActiveSpan(
    `${projection} batch`,
    {
      attributes: {
        'vantageedge.projection': projection,
        'vantageedge.batch.events': events.length,
        'vantageedge.batch.first_position': events[0]?.position.toString() ?? '',
        'vantageedge.batch.last_position': events.at(-1)?.position.toString() ?? '',
      },
    },
    async (span) => {
      try {
        return await run();
      } catch (error) {
        span.recordException(error instanceof Error ? error : String(error));
        span.setStatus({ code: SpanStatusCode.ERROR });
        throw error;
      } finally {
        span.end();
      }
    },
  );
}

/** A span around one publication of snapshots to the bus (`<projection> publish`). */
export function tracePublish<T>(projection: string, messages: number, run: () => Promise<T>): Promise<T> {
  return tracer.startActiveSpan(
    `${projection} publish`,
    { attributes: { 'vantageedge.projection': projection, 'messaging.batch.message_count': messages } },
    async (span) => {
      try {
        return await run();
      } catch (error) {
        span.recordException(error instanceof Error ? error : String(error));
        span.setStatus({ code: SpanStatusCode.ERROR });
        throw error;
      } finally {
        span.end();
      }
    },
  );
}
