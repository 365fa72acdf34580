import type { IncomingMessage } from 'node:http';
import { describe, expect, it, vi } from 'vitest';
import { RequestTracing, traceIdFromHeader } from './request-tracing.js';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';

describe('traceIdFromHeader', () => {
  it('returns the trace id of a valid W3C traceparent', () => {
    expect(traceIdFromHeader(`00-${TRACE_ID}-00f067aa0ba902b7-01`)).toBe(TRACE_ID);
    expect(traceIdFromHeader(`00-${TRACE_ID}-00f067aa0ba902b7-00`)).toBe(TRACE_ID);
    // A later version may append fields; its first four are still read.
    expect(traceIdFromHeader(`01-${TRACE_ID}-00f067aa0ba902b7-01-future`)).toBe(TRACE_ID);
  });

  // Regression: only the length and the first `-` were checked, so any 32 characters a client sent
  // (spaces, `=`, quotes) became the access log's trace_id.
  it.each([
    ['32 arbitrary characters', `00-${'tenant=other admin=yes status=200'.slice(0, 32)}-0000000000000001-01`],
    ['upper-case hex', `00-${TRACE_ID.toUpperCase()}-00f067aa0ba902b7-01`],
    ['an all-zero trace id', `00-${'0'.repeat(32)}-00f067aa0ba902b7-01`],
    ['an all-zero parent id', `00-${TRACE_ID}-0000000000000000-01`],
    ['version ff', `ff-${TRACE_ID}-00f067aa0ba902b7-01`],
    ['version 00 with trailing data', `00-${TRACE_ID}-00f067aa0ba902b7-01xxxx`],
    ['version 00 with another field', `00-${TRACE_ID}-00f067aa0ba902b7-01-extra`],
    ['a later version with trailing data not after a dash', `01-${TRACE_ID}-00f067aa0ba902b7-01xx`],
    ['a short parent id', `00-${TRACE_ID}-00f067aa0ba902-01`],
    ['a non-hex flag', `00-${TRACE_ID}-00f067aa0ba902b7-0g`],
    ['two joined headers', `00-${TRACE_ID}-00f067aa0ba902b7-01, 00-${TRACE_ID}-00f067aa0ba902b7-01`],
  ])('rejects %s', (_case, traceparent) => {
    expect(traceIdFromHeader(traceparent)).toBeUndefined();
  });

  it('rejects a missing or repeated header', () => {
    expect(traceIdFromHeader(undefined)).toBeUndefined();
    expect(traceIdFromHeader([`00-${TRACE_ID}-00f067aa0ba902b7-01`])).toBeUndefined();
  });
});

describe('the SERVER span of a long target', () => {
  // Regression: the span redacted the credential `;` parameters of the whole target before its url.path
  // kept the first 2,048 characters: a target of the header limit (up to 1 MiB) made of them cost the
  // replica a redaction of every one, for each such request.
  it('redacts only the part of the target its url.path keeps', () => {
    const url = `/${';session=x'.repeat(100_000)}`;
    const req = { method: 'GET', url, headers: { host: 'traced.localhost' }, socket: {} } as IncomingMessage;
    const decode = vi.spyOn(globalThis, 'decodeURIComponent');
    try {
      new RequestTracing(true).startServerSpan(req, false).end();
      expect(decode.mock.calls.length).toBeLessThan(1_000);
    } finally {
      decode.mockRestore();
    }
  });
});
