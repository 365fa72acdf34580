import net from 'node:net';
import tls from 'node:tls';

/**
 * An HTTP/2 client that sends frames as written, for the tests of what a conforming client (node's)
 * refuses to send: malformed header blocks, DATA on streams never opened, unsolicited ACKs. Header
 * blocks are HPACK literals without indexing (the server's decoding table never changes), and what
 * the gateway answers is kept per stream: the status when it came as one of HPACK's static `:status`
 * entries (how nghttp2 sends 200, 204, 206, 304, 400, 404 and 500), the body, and the RST_STREAM code.
 */

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
export const TYPE = {
  DATA: 0,
  HEADERS: 1,
  PRIORITY: 2,
  RST_STREAM: 3,
  SETTINGS: 4,
  PING: 6,
  GOAWAY: 7,
  WINDOW_UPDATE: 8,
  CONTINUATION: 9,
} as const;
export const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 } as const;
/** HPACK's static table entries 8 to 14 (RFC 7541 Appendix A). */
const STATIC_STATUS: Record<number, number> = { 8: 200, 9: 204, 10: 206, 11: 304, 12: 400, 13: 404, 14: 500 };

export type HeaderFields = ReadonlyArray<readonly [name: string, value: string]>;

export function frame(
  type: number,
  flags: number,
  streamId: number,
  payload: Uint8Array = Buffer.alloc(0),
): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(streamId, 5);
  return Buffer.concat([head, payload]);
}

/** An HPACK integer with an N-bit prefix (RFC 7541 §5.1). */
export function hpackInteger(value: number, prefixBits: number): number[] {
  const max = (1 << prefixBits) - 1;
  if (value < max) return [value];
  const bytes = [max];
  let rest = value - max;
  while (rest >= 128) {
    bytes.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  bytes.push(rest);
  return bytes;
}

/** The fields in the order given, names and values as given (no lowercasing, no checks). */
export function headerBlock(fields: HeaderFields): Buffer {
  const bytes: number[] = [];
  for (const [name, value] of fields) {
    const nameBytes = Buffer.from(name, 'latin1');
    const valueBytes = Buffer.from(value, 'latin1');
    bytes.push(0x00, ...hpackInteger(nameBytes.length, 7), ...nameBytes);
    bytes.push(...hpackInteger(valueBytes.length, 7), ...valueBytes);
  }
  return Buffer.from(bytes);
}

export function headersFrame(streamId: number, fields: HeaderFields, endStream: boolean): Buffer {
  const flags = FLAG.END_HEADERS | (endStream ? FLAG.END_STREAM : 0);
  return frame(TYPE.HEADERS, flags, streamId, headerBlock(fields));
}

export function dataFrame(streamId: number, data: string, endStream: boolean): Buffer {
  return frame(TYPE.DATA, endStream ? FLAG.END_STREAM : 0, streamId, Buffer.from(data));
}

/** RST_STREAM with `code` (an HTTP/2 error code: NO_ERROR 0, CANCEL 8, …). */
export function resetFrame(streamId: number, code: number): Buffer {
  const payload = Buffer.alloc(4);
  payload.writeUInt32BE(code);
  return frame(TYPE.RST_STREAM, 0, streamId, payload);
}

export function pingAckFrame(): Buffer {
  return frame(TYPE.PING, FLAG.ACK, 0, Buffer.alloc(8));
}

/** What the server sent on one stream. */
export interface RawStreamAnswer {
  status: number | undefined;
  body: string;
  ended: boolean;
  /** The RST_STREAM error code, if the stream was reset. */
  resetCode: number | undefined;
}

export interface RawHttp2Client {
  send(...frames: Buffer[]): void;
  answer(streamId: number): RawStreamAnswer;
  /** The error code of the server's GOAWAY, if it sent one. */
  goawayCode(): number | undefined;
  /** A PING, answered once the server has taken every frame sent before it. */
  ping(): Promise<void>;
  readonly closed: Promise<void>;
  isClosed(): boolean;
  destroy(): void;
}

/**
 * An HTTP/2 connection with prior knowledge (plain) or ALPN h2 (TLS), its preface and SETTINGS sent.
 * `answerPings`: the server's PINGs are acknowledged, as a conforming client does (otherwise they are not).
 */
export async function connectRawHttp2(
  kind: 'tls' | 'plain',
  port: number,
  { answerPings = false }: { answerPings?: boolean } = {},
): Promise<RawHttp2Client> {
  const socket =
    kind === 'tls'
      ? tls.connect({
          host: '127.0.0.1',
          port,
          servername: 'localhost',
          rejectUnauthorized: false,
          ALPNProtocols: ['h2'],
        })
      : net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  let isClosed = false;
  const closed = new Promise<void>((resolve) =>
    socket.once('close', () => {
      isClosed = true;
      resolve();
    }),
  );
  const answers = new Map<number, RawStreamAnswer>();
  let goaway: number | undefined;
  const pingsWaiting: Array<() => void> = [];
  const answerOf = (streamId: number): RawStreamAnswer => {
    let answer = answers.get(streamId);
    if (answer === undefined) {
      answer = { status: undefined, body: '', ended: false, resetCode: undefined };
      answers.set(streamId, answer);
    }
    return answer;
  };
  let buffered = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    while (buffered.length >= 9 && buffered.length >= 9 + buffered.readUIntBE(0, 3)) {
      const length = buffered.readUIntBE(0, 3);
      const [type, flags] = [buffered[3]!, buffered[4]!];
      const streamId = buffered.readUInt32BE(5) & 0x7fffffff;
      const payload = buffered.subarray(9, 9 + length);
      buffered = buffered.subarray(9 + length);
      if (type === TYPE.SETTINGS && (flags & FLAG.ACK) === 0) socket.write(frame(TYPE.SETTINGS, FLAG.ACK, 0));
      else if (type === TYPE.GOAWAY) goaway = payload.readUInt32BE(4);
      else if (type === TYPE.PING && (flags & FLAG.ACK) !== 0) pingsWaiting.shift()?.();
      else if (type === TYPE.PING && answerPings) socket.write(frame(TYPE.PING, FLAG.ACK, 0, payload));
      else if (type === TYPE.RST_STREAM) answerOf(streamId).resetCode = payload.readUInt32BE(0);
      else if (type === TYPE.HEADERS || type === TYPE.DATA) {
        const answer = answerOf(streamId);
        const first = payload[0] ?? 0;
        // An indexed field (high bit set) first: the status from the static table.
        if (type === TYPE.HEADERS && answer.status === undefined && (first & 0x80) !== 0)
          answer.status = STATIC_STATUS[first & 0x7f];
        if (type === TYPE.DATA) answer.body += payload.toString('utf8');
        if ((flags & FLAG.END_STREAM) !== 0) answer.ended = true;
      }
    }
  });
  await new Promise<void>((resolve) => {
    socket.once(kind === 'tls' ? 'secureConnect' : 'connect', () => resolve());
    void closed.then(() => resolve());
  });
  socket.write(Buffer.concat([PREFACE, frame(TYPE.SETTINGS, 0, 0)]));
  return {
    send: (...frames) => {
      socket.write(Buffer.concat(frames));
    },
    answer: (streamId) => ({ ...answerOf(streamId) }),
    goawayCode: () => goaway,
    ping: () =>
      new Promise<void>((resolve) => {
        pingsWaiting.push(resolve);
        socket.write(frame(TYPE.PING, 0, 0, Buffer.alloc(8)));
      }),
    closed,
    isClosed: () => isClosed,
    destroy: () => socket.destroy(),
  };
}

export interface FloodOptions {
  /** Frames sent right after the preface and SETTINGS (a request the flood goes on). */
  opening?: Buffer[];
  /** The most frames the flood sends. */
  frames?: number;
  closeWithinMs?: number;
  /**
   * The client reads (and drops) what the server sends, so it sees a connection the server ends with
   * GOAWAY and FIN. Otherwise it reads nothing (no ACK, no response, no GOAWAY: they pile up on the
   * server) and sees only a connection the server destroys.
   */
  reads?: boolean;
}

/** What a flood sent, and whether the server had closed the connection by the end. */
export interface FloodResult {
  sent: number;
  closed: boolean;
}

/**
 * A client with prior knowledge that sends its preface, SETTINGS and `opening`, then `next(i)` frames
 * in batches until the server closes the connection or `frames` went out, never answering a frame
 * (no ACK, no window). Then it waits up to `closeWithinMs` for the server to close the connection, and
 * leaves.
 */
export async function floodHttp2(
  port: number,
  next: (i: number) => Buffer,
  { opening = [], frames = 100_000, closeWithinMs = 10_000, reads = false }: FloodOptions = {},
): Promise<FloodResult> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  if (reads) socket.on('data', () => {});
  else socket.pause();
  let isClosed = false;
  const closed = new Promise<void>((resolve) =>
    socket.once('close', () => {
      isClosed = true;
      resolve();
    }),
  );
  await new Promise<void>((resolve) => {
    socket.once('connect', () => resolve());
    void closed.then(() => resolve());
  });
  socket.write(Buffer.concat([PREFACE, frame(TYPE.SETTINGS, 0, 0), ...opening]));
  let sent = 0;
  while (sent < frames && !isClosed) {
    const batch: Buffer[] = [];
    for (let i = 0; i < 500 && sent < frames; i++, sent++) batch.push(next(sent));
    if (!socket.write(Buffer.concat(batch))) {
      await Promise.race([new Promise((resolve) => socket.once('drain', resolve)), closed]);
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  let gaveUp = false;
  const waited = setTimeout(() => {
    gaveUp = true;
    socket.destroy();
  }, closeWithinMs);
  await closed;
  clearTimeout(waited);
  return { sent, closed: !gaveUp };
}
