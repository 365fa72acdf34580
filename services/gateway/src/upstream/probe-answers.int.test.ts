import { maxHeaderSize } from 'node:http';
import type net from 'node:net';
import { describe, expect, it } from 'vitest';
import { onRequestHeads } from '../testing/request-heads.js';
import { PROBE_BODY_READ_LIMIT } from './active-health-checks.js';
import { firstProbeResults } from './testing/probe-results.js';
import { MAX_ANSWER_HEADER_LINES, MAX_INTERIM_ANSWERS } from './unasked-continue.js';

/**
 * A health probe reads an origin's answer as a proxied request does. Regression tests: a target whose
 * answers start with a `100 Continue` it sends unasked (which the proxy ignores, its requests answered)
 * failed every probe, undici closing the connection on any 100, and was marked down; a target flooding
 * its answer with interim answers, or a head with thousands of header lines (every proxied request to
 * it answered 502), passed its probes, each read at the origin's pace for as long as it went on. A probe
 * is judged by its whole answer, as Envoy's are: an answer cut before its end (a trailer section past
 * the bounds, a body shorter than its length, one still coming at the probe's timeout) passed, the
 * probe's reading resolving whatever ended the body.
 */
const OK = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';

/**
 * The first two probes' results of a target that answers every request with `answer` (written as it is),
 * or as `answer(socket)` does.
 */
function probeResults(
  answer: string | ((socket: net.Socket) => void),
  timeoutSeconds?: number,
): Promise<boolean[]> {
  const answering = typeof answer === 'string' ? (socket: net.Socket) => socket.write(answer) : answer;
  return firstProbeResults((socket) => onRequestHeads(socket, () => answering(socket)), 2, timeoutSeconds);
}

const head = (status: string, lines: number) => `HTTP/1.1 ${status}\r\n${'x: v\r\n'.repeat(lines)}\r\n`;

// Each case probes a target of its own, and mostly waits for the second probe (an interval later): the
// cases run side by side.
describe.concurrent('a health probe of an origin', () => {
  it('that sends 100 Continue unasked before its answer: passes, as its proxied requests are answered', async () => {
    expect(await probeResults(`HTTP/1.1 100 Continue\r\n\r\n${OK}`)).toEqual([true, true]);
  });

  it.each([
    [
      'more than MAX_INTERIM_ANSWERS interim answers',
      head('103 Early Hints', 1).repeat(MAX_INTERIM_ANSWERS + 1),
    ],
    [
      'an interim answer of more than MAX_ANSWER_HEADER_LINES header lines',
      head('103 Early Hints', MAX_ANSWER_HEADER_LINES + 1),
    ],
  ])(
    'that sends %s before its answer: fails, as its proxied requests are answered 502',
    async (_case, before) => {
      expect(await probeResults(`${before}${OK}`)).toEqual([false, false]);
    },
  );

  it('whose answer head has more than MAX_ANSWER_HEADER_LINES header lines: fails', async () => {
    const answer = `${head('200 OK', MAX_ANSWER_HEADER_LINES).replace(/\r\n$/, '')}Content-Length: 2\r\n\r\nok`;
    const atBound = `${head('200 OK', MAX_ANSWER_HEADER_LINES - 1).replace(/\r\n$/, '')}Content-Length: 2\r\n\r\nok`;
    const [past, at] = await Promise.all([probeResults(answer), probeResults(atBound)]);
    expect(past).toEqual([false, false]);
    expect(at).toEqual([true, true]);
  });

  const chunked = (trailers: string) =>
    `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n${trailers}\r\n`;

  it('whose chunked answer has a trailer section of more than MAX_ANSWER_HEADER_LINES lines: fails, as its proxied answers are cut', async () => {
    const [past, at] = await Promise.all([
      probeResults(chunked('x: v\r\n'.repeat(MAX_ANSWER_HEADER_LINES + 1))),
      probeResults(chunked('x: v\r\n'.repeat(MAX_ANSWER_HEADER_LINES))),
    ]);
    expect(past).toEqual([false, false]);
    expect(at).toEqual([true, true]);
  });

  it('whose chunked answer has a trailer section of more bytes than an answer head may have: fails', async () => {
    const line = `x: ${'v'.repeat(1000)}\r\n`;
    const lines = Math.ceil((4 * maxHeaderSize) / line.length) + 1;
    expect(await probeResults(chunked(line.repeat(lines)))).toEqual([false, false]);
  });

  it('whose answer ends before its Content-Length: fails', async () => {
    const cut = (socket: net.Socket) => socket.end('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok');
    expect(await probeResults(cut)).toEqual([false, false]);
  });

  it('whose body has not ended at the probe timeout: fails', async () => {
    expect(await probeResults('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok', 1)).toEqual([false, false]);
  });

  it('whose body is longer than PROBE_BODY_READ_LIMIT: is judged by its head, the rest left unread', async () => {
    const length = 2 * PROBE_BODY_READ_LIMIT;
    const long = (socket: net.Socket) =>
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${length}\r\n\r\n${'x'.repeat(length)}`);
    expect(await probeResults(long)).toEqual([true, true]);
  });
});
