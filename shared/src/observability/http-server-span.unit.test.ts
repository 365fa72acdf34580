import type { IncomingHttpHeaders } from 'node:http';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { afterAll, describe, expect, it } from 'vitest';
import { serverTracer, startServerSpan } from './http-server-span.js';
import { startTelemetry } from './telemetry.js';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_ID = '00f067aa0ba902b7';

/**
 * A caller's headers with a `baggage` field that counts how often it is read. 180 entries with
 * properties, as a client may send on every request: OpenTelemetry's baggage propagator, registered
 * beside the trace-context one, decoded each of them (about 200 µs of the event loop a request).
 */
function headersCountingBaggageReads(): { headers: IncomingHttpHeaders; reads: () => number } {
  let reads = 0;
  const baggage = Array.from({ length: 180 }, (_, i) => `key${i}=%E2%82%ACvalue${i};property=1`).join(',');
  const headers: IncomingHttpHeaders = {
    host: 'traced.localhost',
    traceparent: `00-${TRACE_ID}-${PARENT_ID}-01`,
    tracestate: 'vendor=value',
  };
  Object.defineProperty(headers, 'baggage', {
    enumerable: true,
    get() {
      reads++;
      return baggage;
    },
  });
  return { headers, reads: () => reads };
}

// One file: the OpenTelemetry API keeps its tracer provider and propagators in a process-wide global.
describe("a SERVER span and the caller's headers", () => {
  const exporter = new InMemorySpanExporter();
  const telemetry = startTelemetry({ serviceName: 'server-span-test', enabled: true, exporter });
  afterAll(() => telemetry.shutdown());
  const tracer = serverTracer('server-span-test');

  it.each([
    ['an untrusted client', false],
    ['a trusted proxy', true],
  ])('reads the trace context of %s and never its baggage, which no span uses', async (_peer, trusted) => {
    const { headers, reads } = headersCountingBaggageReads();
    const span = startServerSpan(tracer, headers, { 'http.request.method': 'GET' }, trusted);
    span.end();
    await telemetry.forceFlush();

    const recorded = exporter.getFinishedSpans().at(-1)!;
    const caller = trusted ? recorded.parentSpanContext : recorded.links[0]?.context;
    expect(caller).toMatchObject({ traceId: TRACE_ID, spanId: PARENT_ID });
    expect(caller?.traceState?.serialize()).toBe('vendor=value');
    expect(reads()).toBe(0);
  });
});
