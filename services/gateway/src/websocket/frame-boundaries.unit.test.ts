import { describe, expect, it } from 'vitest';
import { closeFrame } from './close-frame.js';
import { FrameBoundaries } from './frame-boundaries.js';

/** A binary frame of `length` payload bytes, its length in the shortest form, masked when asked. */
function frame(length: number, masked = false): Buffer {
  const maskBit = masked ? 0x80 : 0;
  let header: Buffer;
  if (length < 126) header = Buffer.from([0x82, maskBit | length]);
  else if (length < 65_536) header = Buffer.from([0x82, maskBit | 126, length >> 8, length & 0xff]);
  else {
    header = Buffer.alloc(10);
    header[0] = 0x82;
    header[1] = maskBit | 127;
    header.writeBigUInt64BE(BigInt(length), 2);
  }
  const mask = masked ? Buffer.from([9, 8, 7, 6]) : Buffer.alloc(0);
  return Buffer.concat([header, mask, Buffer.alloc(length, 'p')]);
}

/** Feeds `bytes` in pieces of `size` and says where a boundary was seen after each piece. */
function boundariesAfterEachPiece(bytes: Buffer, size: number): boolean[] {
  const boundaries = new FrameBoundaries();
  const seen: boolean[] = [];
  for (let at = 0; at < bytes.length; at += size) {
    boundaries.observe(bytes.subarray(at, at + size));
    seen.push(boundaries.atBoundary);
  }
  return seen;
}

describe('FrameBoundaries', () => {
  it('is at a boundary before any frame', () => {
    expect(new FrameBoundaries().atBoundary).toBe(true);
  });

  it.each([
    ['a short frame', 10, false],
    ['a frame with a 16-bit length', 1_000, false],
    ['a frame with a 64-bit length', 70_000, false],
    ['a masked frame with a 64-bit length', 70_000, true],
  ])('follows %s byte by byte: a boundary only after its last byte', (_case, length, masked) => {
    const bytes = frame(length, masked);
    const seen = boundariesAfterEachPiece(bytes, 1);
    expect(seen.slice(0, -1).every((atBoundary) => !atBoundary)).toBe(true);
    expect(seen.at(-1)).toBe(true);
  });

  it('follows frames back to back, split anywhere', () => {
    const bytes = Buffer.concat([frame(5), frame(0), frame(300, true), frame(2)]);
    for (const size of [1, 3, 7, 64, bytes.length]) {
      const boundaries = new FrameBoundaries();
      for (let at = 0; at < bytes.length; at += size) boundaries.observe(bytes.subarray(at, at + size));
      expect(boundaries.atBoundary, `pieces of ${size}`).toBe(true);
    }
    const boundaries = new FrameBoundaries();
    boundaries.observe(bytes.subarray(0, bytes.length - 1));
    expect(boundaries.atBoundary).toBe(false);
  });

  it('knows no boundary after a 64-bit length with its top bit set', () => {
    const boundaries = new FrameBoundaries();
    boundaries.observe(Buffer.from([0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0]));
    boundaries.observe(frame(1));
    expect(boundaries.atBoundary).toBe(false);
  });

  it('observes up to the end of the frame in flight and no further', () => {
    const boundaries = new FrameBoundaries();
    const first = frame(300, true);
    boundaries.observe(first.subarray(0, 100));
    const rest = Buffer.concat([first.subarray(100), frame(5)]);
    expect(boundaries.observeToBoundary(rest)).toBe(first.length - 100);
    expect(boundaries.atBoundary).toBe(true);
  });

  it('observes a whole piece that does not reach the end of the frame in flight', () => {
    const boundaries = new FrameBoundaries();
    const bytes = frame(300);
    boundaries.observe(bytes.subarray(0, 1));
    expect(boundaries.observeToBoundary(bytes.subarray(1, 200))).toBe(199);
    expect(boundaries.atBoundary).toBe(false);
    expect(boundaries.observeToBoundary(bytes.subarray(200))).toBe(bytes.length - 200);
    expect(boundaries.atBoundary).toBe(true);
  });

  it('tells how many bytes the frame in flight still has to come, unknown until its header is whole', () => {
    const boundaries = new FrameBoundaries();
    const bytes = frame(70_000);
    boundaries.observe(bytes.subarray(0, 5));
    expect(boundaries.frameRestAtMost(1_000_000)).toBe(true);
    boundaries.observe(bytes.subarray(5, 10 + 1_000));
    expect(boundaries.frameRestAtMost(69_000)).toBe(true);
    expect(boundaries.frameRestAtMost(68_999)).toBe(false);
  });

  it('never expects the end of a frame whose 64-bit length has its top bit set', () => {
    const boundaries = new FrameBoundaries();
    boundaries.observe(Buffer.from([0x82, 127, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]));
    expect(boundaries.frameRestAtMost(Number.MAX_SAFE_INTEGER)).toBe(false);
  });

  it.each([
    ['unmasked, in one piece', false, Number.MAX_SAFE_INTEGER],
    ['masked, in one piece', true, Number.MAX_SAFE_INTEGER],
    ['masked, a byte at a time', true, 1],
  ])('reads the status code of the first close frame (%s), after other frames', (_name, masked, piece) => {
    const bytes = Buffer.concat([
      frame(300, masked),
      closeFrame(4001, 'bye', masked),
      closeFrame(1000, '', masked),
    ]);
    const boundaries = new FrameBoundaries();
    for (let at = 0; at < bytes.length; at += piece) boundaries.observe(bytes.subarray(at, at + piece));
    expect(boundaries.closeCode).toBe(4001);
    expect(boundaries.atBoundary).toBe(true);
  });

  it('reads a close frame without a status code as 1005, and none before a close frame', () => {
    const boundaries = new FrameBoundaries();
    boundaries.observe(frame(10));
    expect(boundaries.closeCode).toBeUndefined();
    boundaries.observe(Buffer.from([0x88, 0x00]));
    expect(boundaries.closeCode).toBe(1005);
  });
});
