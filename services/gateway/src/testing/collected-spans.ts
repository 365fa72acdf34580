import { type ProxyTracerProvider, trace } from '@opentelemetry/api';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';

type ExportResult = Parameters<Parameters<SpanExporter['export']>[1]>[0];

/** An in-memory collector that keeps spans after shutdown (InMemorySpanExporter clears them then). */
export function collectingExporter(finished: ReadableSpan[]): SpanExporter {
  return {
    export(spans: ReadableSpan[], done: (result: ExportResult) => void) {
      finished.push(...spans);
      done({ code: 0 });
    },
    shutdown: async () => {},
  };
}

/** Exports what the registered SDK's batch processor holds. */
export async function flushSpans(): Promise<void> {
  const provider = (trace.getTracerProvider() as ProxyTracerProvider).getDelegate();
  await (provider as { forceFlush?: () => Promise<void> }).forceFlush?.();
}
