import type { IncomingHttpHeaders } from 'node:http';
import { describe, expect, it } from 'vitest';
import { readRepeatedLinesAsHttp1 } from './http2-field-lines.js';

/** The headers object node's HTTP/2 layer builds from these lines, then the gateway's reading of it. */
function read(lines: ReadonlyArray<readonly [string, string]>, asNodeGaveThem: IncomingHttpHeaders) {
  const headers = { ...asNodeGaveThem };
  readRepeatedLinesAsHttp1(headers, lines.flat());
  return headers;
}

describe('repeated HTTP/2 request fields read as node:http reads HTTP/1.1 lines', () => {
  it('joins every line of a field node kept once, in the order sent, beside other fields', () => {
    const lines = [
      [':path', '/'],
      ['if-none-match', '"a"'],
      ['accept', 'x, y'],
      ['if-none-match', '"b"'],
      ['range', 'bytes=0-1'],
      ['if-none-match', '"c"'],
    ] as const;
    expect(read(lines, { ':path': '/', 'if-none-match': '"a"', accept: 'x, y', range: 'bytes=0-1' })).toEqual(
      { ':path': '/', 'if-none-match': '"a", "b", "c"', accept: 'x, y', range: 'bytes=0-1' },
    );
  });

  it('keeps the first Server line, as node:http does', () => {
    const lines = [
      ['server', 'one'],
      ['server', 'two'],
    ] as const;
    expect(read(lines, { server: 'one, two' })).toEqual({ server: 'one' });
  });

  it('leaves a request without repeated lines as node gave it', () => {
    const headers = { 'if-match': '"a"', cookie: 'a=1; b=2' };
    const lines = [
      ['if-match', '"a"'],
      ['cookie', 'a=1'],
      ['cookie', 'b=2'],
    ] as const;
    expect(read(lines, headers)).toEqual(headers);
  });
});
