import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FrameBoundaries } from './frame-boundaries.js';

/**
 * Seeded property test of the frame tracker: a stream of random frames (every opcode, masked or not,
 * lengths in all three forms, shortest or not, close frames with and without a status code), maybe
 * ending with a frame of a length no peer sends, is fed whole and split at random points, some pieces
 * only up to the end of the frame in flight. Whatever the split, the tracker sees a boundary exactly
 * where a frame ends, reads the first close frame's status code, and tells how much of the frame in
 * flight is still to come, as for the unsplit stream.
 */
const SEED = 20_261_205;
const RUNS = Number(process.env['FRAME_BOUNDARIES_CASES'] ?? 600);

interface Frame {
  opcode: number;
  masked: boolean;
  payload: Uint8Array;
  /** How the payload length is written: in 7 bits, 16 bits or 64 bits (any length that fits the form). */
  lengthForm: 7 | 16 | 64;
  mask: Uint8Array;
}

const frameArbitrary: fc.Arbitrary<Frame> = fc
  .record({
    opcode: fc.constantFrom(0x0, 0x1, 0x2, 0x8, 0x8, 0x9, 0xa),
    fin: fc.boolean(),
    masked: fc.boolean(),
    payload: fc.oneof(
      { weight: 6, arbitrary: fc.uint8Array({ maxLength: 8 }) },
      { weight: 3, arbitrary: fc.uint8Array({ minLength: 120, maxLength: 300 }) },
      {
        weight: 1,
        arbitrary: fc.integer({ min: 65_530, max: 70_000 }).map((length) => new Uint8Array(length)),
      },
    ),
    longerForm: fc.constantFrom(undefined, 16 as const, 64 as const),
    mask: fc.uint8Array({ minLength: 4, maxLength: 4 }),
  })
  .map(({ opcode, fin, masked, payload, longerForm, mask }) => {
    const shortest = payload.length < 126 ? 7 : payload.length < 65_536 ? 16 : 64;
    const lengthForm = longerForm !== undefined && longerForm > shortest ? longerForm : shortest;
    return { opcode: (fin ? 0x80 : 0) | opcode, masked, payload, lengthForm, mask };
  });

function encode(frame: Frame): Buffer {
  const { payload, masked, lengthForm, mask } = frame;
  const lengthBytes = lengthForm === 7 ? 0 : lengthForm === 16 ? 2 : 8;
  const header = Buffer.alloc(2 + lengthBytes + (masked ? 4 : 0));
  header[0] = frame.opcode;
  header[1] = (masked ? 0x80 : 0) | (lengthForm === 7 ? payload.length : lengthForm === 16 ? 126 : 127);
  if (lengthForm === 16) header.writeUInt16BE(payload.length, 2);
  if (lengthForm === 64) header.writeBigUInt64BE(BigInt(payload.length), 2);
  if (!masked) return Buffer.concat([header, payload]);
  header.set(mask, 2 + lengthBytes);
  return Buffer.concat([header, payload.map((byte, i) => byte ^ (mask[i % 4] as number))]);
}

const LOST_HEADER_BYTES = 10;

/** A binary frame header whose 64-bit length no peer sends (2^53 and up), and a few bytes after it. */
const lostTailArbitrary = fc
  .tuple(fc.bigInt({ min: 2n ** 53n, max: 2n ** 64n - 1n }), fc.uint8Array({ maxLength: 20 }))
  .map(([length, after]) => {
    const header = Buffer.from([0x82, 127, 0, 0, 0, 0, 0, 0, 0, 0]);
    header.writeBigUInt64BE(length, 2);
    return Buffer.concat([header, after]);
  });

interface Stream {
  bytes: Buffer;
  /** Where each frame's header and the frame end, in order. */
  frames: { start: number; payloadStart: number; end: number }[];
  /** Where the header of a length no peer sends starts, if the stream ends with one. */
  lostAt: number | undefined;
  closeCode: number | undefined;
}

function streamOf(frames: Frame[], lostTail: Buffer | undefined): Stream {
  const encoded = frames.map(encode);
  const spans: Stream['frames'] = [];
  let at = 0;
  for (const [i, bytes] of encoded.entries()) {
    const payload = (frames[i] as Frame).payload;
    spans.push({ start: at, payloadStart: at + bytes.length - payload.length, end: at + bytes.length });
    at += bytes.length;
  }
  const close = frames.find((frame) => (frame.opcode & 0x0f) === 0x8);
  const closeCode =
    close === undefined
      ? undefined
      : close.payload.length < 2
        ? 1005
        : ((close.payload[0] as number) << 8) | (close.payload[1] as number);
  return {
    bytes: Buffer.concat([...encoded, ...(lostTail ? [lostTail] : [])]),
    frames: spans,
    lostAt: lostTail ? at : undefined,
    closeCode,
  };
}

/** What the tracker must say after the stream's first `offset` bytes. */
function expectedAfter(stream: Stream, offset: number) {
  const lost = stream.lostAt !== undefined && offset >= stream.lostAt + LOST_HEADER_BYTES;
  const inFlight = stream.frames.find((frame) => frame.start < offset && offset < frame.end);
  const inLostHeader = stream.lostAt !== undefined && offset > stream.lostAt && !lost;
  return {
    lost,
    atBoundary: !lost && !inLostHeader && inFlight === undefined,
    /** The payload bytes still to come once the header in flight is whole; undefined while it is not. */
    rest: inFlight && offset >= inFlight.payloadStart ? inFlight.end - offset : undefined,
    nextEnd: stream.frames.find((frame) => frame.end > offset)?.end,
  };
}

/** A split point: anywhere in the stream, or a few bytes around a frame's start (inside its header). */
const cutArbitrary = fc.oneof(
  fc.record({ anywhere: fc.double({ min: 0, max: 1, noNaN: true }) }),
  fc.record({ frame: fc.nat(), delta: fc.integer({ min: -3, max: 3 }) }),
);

const caseArbitrary = fc
  .record({
    frames: fc.array(frameArbitrary, { maxLength: 40 }),
    lostTail: fc.option(lostTailArbitrary, { freq: 5, nil: undefined }),
    cuts: fc.array(cutArbitrary, { maxLength: 30 }),
    toBoundary: fc.array(fc.boolean(), { minLength: 31, maxLength: 31 }),
  })
  .map(({ frames, lostTail, cuts, toBoundary }) => {
    const stream = streamOf(frames, lostTail);
    const length = stream.bytes.length;
    const offsets = cuts.map((cut) => {
      if ('anywhere' in cut) return Math.floor(cut.anywhere * length);
      const start =
        stream.frames.length === 0 ? 0 : (stream.frames[cut.frame % stream.frames.length]?.start ?? 0);
      return Math.min(length, Math.max(0, start + cut.delta));
    });
    const ends = [...new Set(offsets)].sort((a, b) => a - b);
    return { stream, ends: [...ends, length], toBoundary };
  });

describe('FrameBoundaries over random frames split at random points', () => {
  it('sees the boundaries, the close code and the rest of the frame in flight as for the unsplit stream', () => {
    fc.assert(
      fc.property(caseArbitrary, ({ stream, ends, toBoundary }) => {
        const whole = new FrameBoundaries();
        whole.observe(stream.bytes);
        const atEnd = expectedAfter(stream, stream.bytes.length);
        expect(whole.atBoundary).toBe(atEnd.atBoundary);
        expect(whole.closeCode).toBe(stream.closeCode);

        const split = new FrameBoundaries();
        let at = 0;
        for (const [i, end] of ends.entries()) {
          if (end <= at) continue;
          const piece = stream.bytes.subarray(at, end);
          if (toBoundary[i]) {
            const before = expectedAfter(stream, at);
            const taken = split.observeToBoundary(piece);
            const upTo = before.lost || before.nextEnd === undefined ? end : Math.min(end, before.nextEnd);
            expect(taken, `observed to the boundary from ${at}`).toBe(upTo - at);
            at += taken;
          } else {
            split.observe(piece);
            at = end;
          }
          const expected = expectedAfter(stream, at);
          expect(split.atBoundary, `at a boundary after ${at} bytes`).toBe(expected.atBoundary);
          if (expected.lost) expect(split.frameRestAtMost(Number.MAX_SAFE_INTEGER)).toBe(false);
          if (expected.rest !== undefined) {
            expect(split.frameRestAtMost(expected.rest), `rest after ${at} bytes`).toBe(true);
            expect(split.frameRestAtMost(expected.rest - 1), `rest after ${at} bytes`).toBe(false);
          }
        }
        if (at < stream.bytes.length) split.observe(stream.bytes.subarray(at));
        expect(split.atBoundary).toBe(whole.atBoundary);
        expect(split.closeCode).toBe(whole.closeCode);
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });
});
