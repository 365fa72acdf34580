import { maxHeaderSize } from 'node:http';
import { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import {
  dropUnaskedContinue,
  MAX_ANSWER_HEADER_LINES,
  MAX_HEAD_BYTES,
  MAX_INTERIM_ANSWERS,
} from './unasked-continue.js';

const FINAL = 'HTTP/1.1 200 OK\r\nContent-Length: 25\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n';
const HINTS = 'HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n';
const CONTINUE = 'HTTP/1.1 100 Continue\r\nX-Interim: 1\r\n\r\n';

const REQUEST_HEAD = 'GET /x HTTP/1.1\r\nhost: a\r\n\r\n';

/** A connection to an origin, its reads filtered as undici's are. */
function originConnection(): Duplex {
  const socket = new Duplex({
    read() {},
    write(_chunk, _encoding, callback) {
      callback();
    },
  });
  socket.on('error', () => {});
  dropUnaskedContinue(socket);
  return socket;
}

/** What undici reads of `part` arriving on `socket`. */
function readArrived(socket: Duplex, part: string): string {
  socket.push(Buffer.from(part, 'latin1'));
  let read = '';
  for (let chunk = socket.read() as Buffer | null; chunk !== null; chunk = socket.read() as Buffer | null)
    read += chunk.toString('latin1');
  return read;
}

/** A connection as undici sees it: what it reads of `answer` arriving in `parts`, after a request head. */
function readAfterRequest(parts: readonly string[], requestHead = REQUEST_HEAD): string {
  const socket = originConnection();
  socket.write(requestHead, 'latin1');
  let read = '';
  for (const part of parts) read += readArrived(socket, part);
  return read;
}

/** `text` cut in two at every position. */
function everySplit(text: string): string[][] {
  return Array.from({ length: text.length + 1 }, (_, at) => [text.slice(0, at), text.slice(at)]);
}

describe('an origin answer as undici reads it', () => {
  it('leaves out a 100 before the final answer, wherever the reads split it', () => {
    for (const parts of everySplit(`${CONTINUE}${FINAL}`)) expect(readAfterRequest(parts)).toBe(FINAL);
  });

  it('leaves out each 100 among other 1xx answers, and keeps those', () => {
    const answer = `${HINTS}${CONTINUE}HTTP/1.0 100\r\n\r\n${HINTS}${FINAL}`;
    for (const parts of everySplit(answer)) expect(readAfterRequest(parts)).toBe(`${HINTS}${HINTS}${FINAL}`);
  });

  it('leaves out a 100 before the answer to a request whose method is any token (M-SEARCH)', () => {
    const request = 'M-SEARCH /x HTTP/1.1\r\nhost: a\r\n\r\n';
    for (const parts of everySplit(`${CONTINUE}${FINAL}`))
      expect(readAfterRequest(parts, request)).toBe(FINAL);
  });

  it('keeps a final answer whole, its body included, read byte by byte', () => {
    expect(readAfterRequest([...FINAL])).toBe(FINAL);
  });

  it('keeps what is not a 1xx status line: a status of four digits, another protocol', () => {
    for (const answer of ['HTTP/1.1 1000 X\r\n\r\n', 'HTTP/2 100\r\n\r\n', 'ICY 100 OK\r\n\r\n'])
      for (const parts of everySplit(answer)) expect(readAfterRequest(parts)).toBe(answer);
  });

  it('keeps bytes that come with no request written (undici refuses them itself)', () => {
    expect(readAfterRequest([CONTINUE], '\r\n5\r\n')).toBe(CONTINUE);
  });

  it('keeps a 101 and what follows it: the connection is no longer HTTP', () => {
    const answer = `HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n${CONTINUE}`;
    expect(readAfterRequest([answer])).toBe(answer);
  });

  it(`cuts the connection at the interim answer past ${MAX_INTERIM_ANSWERS} to one request, 100s counted`, () => {
    for (const interim of [HINTS, CONTINUE]) {
      const socket = originConnection();
      socket.write(REQUEST_HEAD, 'latin1');
      readArrived(socket, interim.repeat(MAX_INTERIM_ANSWERS));
      expect(socket.destroyed).toBe(false);
      expect(readArrived(socket, `${interim}${FINAL}`)).toBe('');
      expect(socket.destroyed).toBe(true);
      expect((socket.errored as { code?: string } | null)?.code).toBe('GATEWAY_TOO_MANY_INTERIM_ANSWERS');
    }
  });

  it("cuts the connection once a 100's head is longer than undici lets any head be", () => {
    // Long lines: a head of more than MAX_ANSWER_HEADER_LINES short ones is cut before it is this long.
    const line = `X-Interim: ${'1'.repeat(100)}\r\n`;
    const withLines = (count: number) => `HTTP/1.1 100 Continue\r\n${line.repeat(count)}\r\n`;
    const fits = Math.floor((maxHeaderSize - 100) / line.length);
    expect(readAfterRequest([withLines(fits), FINAL])).toBe(FINAL);
    const socket = originConnection();
    socket.write(REQUEST_HEAD, 'latin1');
    readArrived(socket, 'HTTP/1.1 100 Continue\r\n');
    for (let read = 0; read < 10 && !socket.destroyed; read++) readArrived(socket, line.repeat(fits));
    expect((socket.errored as { code?: string } | null)?.code).toBe('UND_ERR_HEADERS_OVERFLOW');
  });

  it('counts the interim answers of each request on a connection apart', () => {
    const socket = originConnection();
    for (let request = 0; request < 3; request++) {
      socket.write(REQUEST_HEAD, 'latin1');
      expect(readArrived(socket, `${CONTINUE.repeat(MAX_INTERIM_ANSWERS)}${FINAL}`)).toBe(FINAL);
    }
    expect(socket.destroyed).toBe(false);
  });

  it('cuts the connection at an answer head of more than MAX_ANSWER_HEADER_LINES header lines, final or interim', () => {
    const head = (status: string, lines: number) => `HTTP/1.1 ${status}\r\n${'x: v\r\n'.repeat(lines)}\r\n`;
    const atBound = `${head('200 OK', MAX_ANSWER_HEADER_LINES - 1)}`.replace(
      /\r\n\r\n$/,
      '\r\nContent-Length: 2\r\n\r\nok',
    );
    expect(readAfterRequest([...atBound])).toBe(atBound);
    const hints = head('103 Early Hints', MAX_ANSWER_HEADER_LINES);
    expect(readAfterRequest([hints, atBound])).toBe(`${hints}${atBound}`);
    for (const over of [
      head('200 OK', MAX_ANSWER_HEADER_LINES + 1),
      head('103 Early Hints', MAX_ANSWER_HEADER_LINES + 1),
    ]) {
      for (const parts of [[over], [...over]]) {
        const socket = originConnection();
        socket.write(REQUEST_HEAD, 'latin1');
        for (const part of parts) readArrived(socket, part);
        expect(socket.destroyed).toBe(true);
        expect((socket.errored as { code?: string } | null)?.code).toBe(
          'GATEWAY_TOO_MANY_ANSWER_HEADER_LINES',
        );
      }
    }
  });

  it('reads where an answer starts as undici does: past the empty lines it skips before a status line', () => {
    // undici's parser skips any CR and LF bytes before a status line; an answer they hid from this reading
    // escaped its bounds, and every answer after it on the connection too.
    const blank = '\r\n\n\r';
    for (const parts of everySplit(`${blank}${CONTINUE}${blank}${FINAL}`))
      expect(readAfterRequest(parts)).toBe(`${blank}${blank}${FINAL}`);
    const cut = (answer: string) => {
      const socket = originConnection();
      socket.write(REQUEST_HEAD, 'latin1');
      readArrived(socket, answer);
      expect(socket.destroyed).toBe(true);
      return (socket.errored as { code?: string } | null)?.code;
    };
    expect(cut(`\r\n${HINTS}`.repeat(MAX_INTERIM_ANSWERS + 1))).toBe('GATEWAY_TOO_MANY_INTERIM_ANSWERS');
    const lines = `HTTP/1.1 200 OK\r\n${'x: v\r\n'.repeat(MAX_ANSWER_HEADER_LINES + 1)}\r\n`;
    for (const answer of [`\r\n${lines}`, `\n${HINTS}${lines}`])
      expect(cut(answer)).toBe('GATEWAY_TOO_MANY_ANSWER_HEADER_LINES');
  });

  it('cuts the connection once the empty lines before a status line are more bytes than an answer head may be', () => {
    const socket = originConnection();
    socket.write(REQUEST_HEAD, 'latin1');
    for (let read = 0; read < 10 && !socket.destroyed; read++)
      readArrived(socket, '\r\n'.repeat(maxHeaderSize));
    expect((socket.errored as { code?: string } | null)?.code).toBe('UND_ERR_HEADERS_OVERFLOW');
  });

  it("counts the lines of each answer's head alone, never those of its body", () => {
    const body = 'line\n'.repeat(MAX_ANSWER_HEADER_LINES * 4);
    const answer = `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    const socket = originConnection();
    for (let request = 0; request < 3; request++) {
      socket.write(REQUEST_HEAD, 'latin1');
      expect(readArrived(socket, answer)).toBe(answer);
    }
    expect(socket.destroyed).toBe(false);
  });
});

/**
 * What undici reads of the answers arriving as `reads` after each request written (a request's answer and
 * anything after it): the bytes read, or why the connection was cut (how much was read before depends on
 * where the reads end).
 */
function readAnswers(exchanges: readonly { request: string; reads: readonly string[] }[]): string {
  const socket = originConnection();
  let read = '';
  for (const { request, reads } of exchanges) {
    socket.write(request, 'latin1');
    for (const part of reads) if (!socket.destroyed) read += readArrived(socket, part);
  }
  return socket.destroyed ? `cut: ${(socket.errored as { code?: string } | null)?.code}` : read;
}

describe('an answer whose whole head comes in one read, as one arriving in small pieces', () => {
  const HEAD_REQUEST = 'HEAD /x HTTP/1.1\r\nhost: a\r\n\r\n';
  const NEXT = [
    { request: REQUEST_HEAD, reads: [`${CONTINUE}HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok`] },
  ];

  /**
   * `answer` read whole and cut at each of `at`, as the same answer read step by step: in pieces shorter
   * than a status line's start (`HTTP/1.1 200 `), none of which holds a head.
   */
  function readsAsInPieces(request: string, answer: string, at: Iterable<number>): void {
    const pieces = Array.from({ length: Math.ceil(answer.length / 12) }, (_, i) =>
      answer.slice(i * 12, i * 12 + 12),
    );
    const inPieces = readAnswers([{ request, reads: pieces }, ...NEXT]);
    for (const cut of at) {
      const reads = [answer.slice(0, cut), answer.slice(cut)];
      expect(readAnswers([{ request, reads }, ...NEXT]), `${JSON.stringify(answer)} cut at ${cut}`).toBe(
        inPieces,
      );
    }
  }

  it('keeps, drops and cuts the same bytes, wherever the reads split the answer', () => {
    const statuses = ['200 OK', '204 No Content', '304 Not Modified', '101 Switching Protocols', '2000 X'];
    const fields = [
      [],
      ['Transfer-Encoding: chunked'],
      ['Transfer-Encoding : chunked'],
      ['Transfer-Encoding:\tchunked'],
      ['Transfer-Encoding: gzip', 'Transfer-Encoding: chunked'],
      ['Transfer-Encoding: chunked', 'Transfer-Encoding: gzip'],
      ['X: a', ' Transfer-Encoding: chunked'],
      ['X: a\rTransfer-Encoding: chunked'],
    ];
    const before = ['', '\r\n', '\n\r\n', CONTINUE, HINTS, `${CONTINUE}\r\n${HINTS}`];
    const body = '5\r\nhello\r\n0\r\nTransfer-Encoding: chunked\r\nX-Sum: 1\r\n\r\nafter';
    for (const end of ['\r\n', '\n'])
      for (const status of statuses)
        for (const lines of fields)
          for (const start of before)
            for (const request of status === '200 OK' ? [REQUEST_HEAD, HEAD_REQUEST] : [REQUEST_HEAD]) {
              const head = `HTTP/1.1 ${status}${end}${lines.map((line) => `${line}${end}`).join('')}${end}`;
              const answer = `${start}${head}${body}`;
              const headStart = answer.indexOf(head);
              const cuts = new Set<number>();
              for (let at = 0; at <= headStart + head.length + 8; at++) cuts.add(at);
              readsAsInPieces(request, answer, cuts);
            }
  });

  it('bounds a head by its lines and its bytes, the empty lines read before its status line counted', () => {
    const atBytes = (bytes: number) => {
      const head = 'HTTP/1.1 200 OK\r\nx: \r\nContent-Length: 2\r\n\r\n';
      return head.replace('x: ', `x: ${'a'.repeat(bytes - head.length)}`);
    };
    for (const start of ['', '\r\n', '\n'.repeat(1000)])
      for (const head of [
        atBytes(MAX_HEAD_BYTES - 1),
        atBytes(MAX_HEAD_BYTES),
        atBytes(MAX_HEAD_BYTES + 1),
        `HTTP/1.1 200 OK\r\n${'x: v\r\n'.repeat(MAX_ANSWER_HEADER_LINES)}\r\n`,
        `HTTP/1.1 200 OK\r\n${'x: v\r\n'.repeat(MAX_ANSWER_HEADER_LINES + 1)}\r\n`,
      ]) {
        const answer = `${start}${head}ok`;
        readsAsInPieces(REQUEST_HEAD, answer, [0, start.length, start.length + 13, answer.length - 2]);
      }
    const socket = originConnection();
    socket.write(REQUEST_HEAD, 'latin1');
    readArrived(socket, '\r\n');
    readArrived(socket, `${atBytes(MAX_HEAD_BYTES)}ok`);
    expect((socket.errored as { code?: string } | null)?.code).toBe('UND_ERR_HEADERS_OVERFLOW');
  });
});

describe("a chunked answer's trailer section as undici reads it", () => {
  // A chunk whose data looks like a last chunk and trailers, and one with an extension.
  const data = `${'0\r\nx: v\r\n'.repeat(2)}\r\nhello`;
  const chunked = (trailers: string, head = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n') =>
    `${head}5\r\nhello\r\n${data.length.toString(16)};ext="a b"\r\n${data}\r\n0\r\n${trailers}\r\n`;
  const lines = (count: number) => 'x: v\r\n'.repeat(count);

  it('keeps an answer whose trailer section has up to MAX_ANSWER_HEADER_LINES lines, wherever the reads split it', () => {
    for (const trailers of ['', 'X-Sum: 1\r\n', lines(MAX_ANSWER_HEADER_LINES)]) {
      const answer = chunked(trailers);
      const socket = originConnection();
      for (let request = 0; request < 3; request++) {
        socket.write(REQUEST_HEAD, 'latin1');
        expect(readArrived(socket, answer)).toBe(answer);
      }
      expect(readAfterRequest([...answer])).toBe(answer);
      expect(socket.destroyed).toBe(false);
    }
    for (const parts of everySplit(chunked('X-Sum: 1\r\nX-Other: 2\r\n'))) {
      const socket = originConnection();
      socket.write(REQUEST_HEAD, 'latin1');
      let read = '';
      for (const part of parts) read += readArrived(socket, part);
      expect(read).toBe(parts.join(''));
      expect(socket.destroyed).toBe(false);
    }
  });

  it('cuts the connection at a trailer section of more than MAX_ANSWER_HEADER_LINES lines', () => {
    const heads = [
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n',
      'HTTP/1.0 200 OK\r\ntransfer-encoding: gzip,  CHUNKED \r\n\r\n',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nX: y\r\nTransfer-Encoding: chunked\r\n\r\n',
      // Sizes with leading zeros, as llhttp reads them.
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000000000000000000001\r\na\r\n',
    ];
    for (const head of heads) {
      const trailers = lines(MAX_ANSWER_HEADER_LINES + 1);
      const answer = chunked(trailers, head);
      for (const parts of [[answer], [...answer]]) {
        const socket = originConnection();
        socket.write(REQUEST_HEAD, 'latin1');
        let read = '';
        for (const part of parts) read += readArrived(socket, part);
        // What came before the trailer section is read first (undici relays it), none of its lines if
        // they came with it.
        if (parts.length === 1) expect(read).toBe(answer.slice(0, -trailers.length - 2));
        expect(socket.destroyed, head).toBe(true);
        expect((socket.errored as { code?: string } | null)?.code).toBe(
          'GATEWAY_TOO_MANY_ANSWER_HEADER_LINES',
        );
      }
    }
  });

  it('counts no lines in what is not a chunked body: other codings, HEAD, 204, 304, a body of its length', () => {
    const body = `0\r\n${lines(MAX_ANSWER_HEADER_LINES * 2)}\r\n`;
    const answers: [string, string][] = [
      [REQUEST_HEAD, `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n${body}`],
      // Read by undici as no chunked body either: data up to the connection's close.
      [REQUEST_HEAD, `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked,\r\n\r\n${body}`],
      [REQUEST_HEAD, `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\t\r\n\r\n${body}`],
      [REQUEST_HEAD, `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: ,\r\n\r\n${body}`],
      [REQUEST_HEAD, `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`],
      [REQUEST_HEAD, `HTTP/1.1 200 OK\r\nX-Transfer-Encoding: chunked\r\n\r\n${body}`],
      ['HEAD /x HTTP/1.1\r\nhost: a\r\n\r\n', `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${body}`],
      [REQUEST_HEAD, `HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n${body}`],
      [REQUEST_HEAD, `HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n${body}`],
    ];
    for (const [request, answer] of answers) {
      expect(readAfterRequest([answer], request)).toBe(answer);
      expect(readAfterRequest([...answer], request)).toBe(answer);
    }
  });

  it('cuts the connection at a head or trailer section padded past what undici counts (whitespace)', () => {
    const padded = `x: ${' '.repeat(8 * 1024)}v\r\n`;
    const fits = `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n${padded}\r\n2\r\nok\r\n0\r\n${padded}\r\n`;
    expect(readAfterRequest([fits])).toBe(fits);
    for (const answer of [
      `HTTP/1.1 200 OK\r\n${padded.repeat(10)}Content-Length: 2\r\n\r\nok`,
      `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n${padded.repeat(10)}\r\n`,
    ]) {
      const socket = originConnection();
      socket.write(REQUEST_HEAD, 'latin1');
      readArrived(socket, answer);
      expect((socket.errored as { code?: string } | null)?.code).toBe('UND_ERR_HEADERS_OVERFLOW');
    }
  });

  it('stops following chunks that are not framed as chunks (undici refuses them itself)', () => {
    const answer = `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n0\r\n${lines(MAX_ANSWER_HEADER_LINES * 2)}\r\n`;
    expect(readAfterRequest([answer])).toBe(answer);
  });
});

describe('bytes undici puts back to read again (it pauses while its client catches up)', () => {
  const HEAD = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n';
  const csv = `${'0\r\n'.repeat(100)}0`;
  const plain = 'x'.repeat(301);
  const body = (data: string, trailers = '') =>
    `5\r\nhello\r\n${`${data.length.toString(16)}\r\n${data}\r\n`.repeat(3)}0\r\n${trailers}\r\n`;

  /**
   * What undici reads of `answer` when a first read brings its first `at` bytes and undici, paused after
   * the first chunk's data, puts back what follows it, then reads that and the rest; and the connection.
   */
  function readPausedAt(answer: string, at: number): { read: string; socket: Duplex } {
    const socket = originConnection();
    socket.write(REQUEST_HEAD, 'latin1');
    const first = readArrived(socket, answer.slice(0, at));
    const parsed = Math.min(first.length, answer.indexOf('hello') + 'hello'.length);
    socket.unshift(Buffer.from(first.slice(parsed), 'latin1'));
    return { read: first.slice(0, parsed) + readArrived(socket, answer.slice(at)), socket };
  }

  it('reads them as they are, once: a body whose data looks like chunk lines is not cut', () => {
    for (const data of [csv, plain]) {
      const answer = HEAD + body(data, 'X-Sum: 1\r\n');
      for (let at = answer.indexOf('hello') + 5; at <= answer.length; at++) {
        const { read, socket } = readPausedAt(answer, at);
        expect(read, `${at}`).toBe(answer);
        expect(socket.destroyed, `${at}`).toBe(false);
      }
    }
  });

  it('still cuts the connection at a trailer section of more than MAX_ANSWER_HEADER_LINES lines', () => {
    const answer = HEAD + body(plain, 'x: v\r\n'.repeat(MAX_ANSWER_HEADER_LINES + 1));
    for (let at = answer.indexOf('hello') + 5; at < answer.indexOf('\r\n0\r\n'); at++) {
      const { socket } = readPausedAt(answer, at);
      expect((socket.errored as { code?: string } | null)?.code, `${at}`).toBe(
        'GATEWAY_TOO_MANY_ANSWER_HEADER_LINES',
      );
    }
  });
});
