import type { IncomingMessage } from 'node:http';
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
import { liveHeapBytes } from '@vantageedge/shared/testing/live-memory';
import { afterAll, describe, expect, it } from 'vitest';
import { startGatewayTelemetry } from './gateway-telemetry.js';
import { RequestTracing } from './request-tracing.js';

type ExportResult = Parameters<Parameters<SpanExporter['export']>[1]>[0];

/** A collector that does not answer until the test ends: every ended span stays in the export queue. */
function unansweredExporter(): SpanExporter & { answerAll(): void } {
  let waiting: Array<(result: ExportResult) => void> | undefined = [];
  return {
    export(_spans, done) {
      if (waiting === undefined) done({ code: 0 });
      else waiting.push(done);
    },
    answerAll() {
      for (const done of waiting ?? []) done({ code: 0 });
      waiting = undefined;
    },
    shutdown: async () => {},
  };
}

function request(
  url: string,
  host: string,
  method = 'GET',
  traceContext: Record<string, string> = {},
): IncomingMessage {
  return { method, url, headers: { host, ...traceContext }, socket: {} } as unknown as IncomingMessage;
}

/** A request string as node's parser hands it over: flat, on the heap, `length` characters. */
function clientText(prefix: string, length: number): string {
  return prefix + Buffer.alloc(length - prefix.length, 'q').toString('latin1');
}

describe('request spans waiting for the collector', () => {
  const exporter = unansweredExporter();
  const telemetry = startGatewayTelemetry({ enabled: true, serviceName: 'gateway-memory-test', exporter });
  afterAll(async () => {
    exporter.answerAll();
    await telemetry.shutdown();
  });

  // The queue holds up to 2048 spans; each must not keep its finished request's strings alive.
  it("holds none of a finished request's long target or Host while its span is queued", () => {
    const tracing = new RequestTracing(true);
    const requests = 60;
    const requestChars = 500_000;
    const before = liveHeapBytes({ collections: 1 });
    for (let i = 0; i < requests; i++) {
      const path = `/orders/${i}/a-path-long-enough-to-be-sliced`;
      const long =
        i % 3 === 0
          ? request(clientText(`${path}?q=`, requestChars), 'traced.localhost')
          : i % 3 === 1
            ? request(clientText(`${path}/`, requestChars), 'traced.localhost')
            : request(path, `${clientText(`h${i}`, requestChars)}:8080`);
      tracing.startServerSpan(long, false).end();
    }
    const retainedBytes = liveHeapBytes({ collections: 1 }) - before;
    // Unbounded, the queue would hold requests × requestChars (30 MB); cut, about requests × 4 KiB.
    expect(retainedBytes).toBeLessThan((requests * requestChars) / 10);
  });

  // Regression: an HTTP/2 client's `:method` may be any token up to the header limit; the span's
  // http.request.method_original was the SDK's cut of it, which kept the whole method alive.
  it("holds none of a finished request's long method while its span is queued", () => {
    const tracing = new RequestTracing(true);
    const requests = 60;
    const methodChars = 500_000;
    const before = liveHeapBytes({ collections: 1 });
    for (let i = 0; i < requests; i++)
      tracing
        .startServerSpan(request('/orders', 'traced.localhost', clientText(`M${i}`, methodChars)), false)
        .end();
    const retainedBytes = liveHeapBytes({ collections: 1 }) - before;
    expect(retainedBytes).toBeLessThan((requests * methodChars) / 10);
  });

  // Regression: the span kept the caller's context as it was parsed (as its link, or from a trusted proxy
  // as its parent): its ids cut from the traceparent, whose later versions may go on after the flags, and
  // its tracestate unparsed, whole, though at most 512 characters of it are ever sent.
  it("holds none of a finished request's long traceparent or tracestate while its span is queued", () => {
    const tracing = new RequestTracing(true);
    const requests = 60;
    const headerChars = 500_000;
    const before = liveHeapBytes({ collections: 1 });
    for (let i = 0; i < requests; i++) {
      const traceId = `${i}`.padStart(32, 'a');
      const traceContext =
        i % 2 === 0
          ? { traceparent: clientText(`cc-${traceId}-bbbbbbbbbbbbbbbb-01-`, headerChars) }
          : {
              traceparent: `00-${traceId}-bbbbbbbbbbbbbbbb-01`,
              tracestate: clientText(`vendor${i}=`, headerChars),
            };
      const span = tracing.startServerSpan(
        request('/orders', 'traced.localhost', 'GET', traceContext),
        i % 4 < 2,
      );
      span.end();
    }
    const retainedBytes = liveHeapBytes({ collections: 1 }) - before;
    expect(retainedBytes).toBeLessThan((requests * headerChars) / 10);
  });
});
