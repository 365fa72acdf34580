import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { FrameRelay, MAX_FRAME_REST_BYTES } from './frame-relay.js';

const CLOSE = Buffer.from([0x88, 2, 0x03, 0xe9]);

/** An unmasked binary frame header announcing `length` payload bytes (64-bit length form). */
function header(length: bigint): Buffer {
  const bytes = Buffer.from([0x82, 127, 0, 0, 0, 0, 0, 0, 0, 0]);
  bytes.writeBigUInt64BE(length, 2);
  return bytes;
}

/** A relay between two in-memory streams: what the sender writes and what the receiver got. */
function relay() {
  const from = new PassThrough();
  const to = new PassThrough();
  const received: Buffer[] = [];
  to.on('data', (chunk: Buffer) => received.push(chunk));
  const ended = new Promise<'ended' | 'cut'>((resolve) => {
    to.once('end', () => resolve('ended'));
    to.once('close', () => resolve(to.readableEnded ? 'ended' : 'cut'));
  });
  const frames = new FrameRelay(from, to);
  frames.start();
  return { from, frames, received: () => Buffer.concat(received), ended };
}

/** Lets the streams deliver what was written. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('FrameRelay closing', () => {
  it('finishes the frame in flight, then writes the close frame; nothing sent after that frame', async () => {
    const { from, frames, received, ended } = relay();
    const frame = Buffer.concat([header(1_000n), Buffer.alloc(1_000, 'f')]);
    from.write(frame.subarray(0, 100));
    await settle();
    frames.stop();
    frames.closeWith(CLOSE);
    from.write(Buffer.concat([frame.subarray(100), Buffer.from([0x81, 1, 0x21])]));
    expect(await ended).toBe('ended');
    expect(received()).toEqual(Buffer.concat([frame, CLOSE]));
  });

  it('does not wait for a rest of more than MAX_FRAME_REST_BYTES: the receiving side is cut', async () => {
    const { from, frames, received, ended } = relay();
    const started = Buffer.concat([header(BigInt(MAX_FRAME_REST_BYTES) + 101n), Buffer.alloc(100, 'f')]);
    from.write(started);
    await settle();
    frames.stop();
    frames.closeWith(CLOSE);
    expect(await ended).toBe('cut');
    expect(received()).toEqual(started);
  });

  it('cuts the receiving side at once after a declared length of 2^63 − 1, allocating nothing for it', async () => {
    const { from, frames, received, ended } = relay();
    const started = Buffer.concat([header(2n ** 63n - 1n), Buffer.alloc(10, 'f')]);
    from.write(started);
    await settle();
    frames.stop();
    frames.closeWith(CLOSE);
    expect(await ended).toBe('cut');
    expect(received()).toEqual(started);
  });

  it('cuts the receiving side when the sender ends halfway through the frame', async () => {
    const { from, frames, received, ended } = relay();
    const started = Buffer.concat([header(1_000n), Buffer.alloc(10, 'f')]);
    from.write(started);
    await settle();
    frames.stop();
    frames.closeWith(CLOSE);
    from.end(Buffer.alloc(10, 'f'));
    expect(await ended).toBe('cut');
    expect(received()).toEqual(Buffer.concat([started, Buffer.alloc(10, 'f')]));
  });

  it('holds little of the rest for a receiver that does not read: the sender is slowed down instead', async () => {
    const from = new PassThrough();
    const to = new PassThrough();
    const frames = new FrameRelay(from, to);
    frames.start();
    const piece = 64 * 1024;
    from.write(header(BigInt(MAX_FRAME_REST_BYTES)));
    await settle();
    frames.stop();
    frames.closeWith(CLOSE);
    for (let sent = 0; sent < MAX_FRAME_REST_BYTES; sent += piece) from.write(Buffer.alloc(piece, 'f'));
    await settle();
    expect(to.writableLength).toBeLessThanOrEqual(2 * piece);
    expect(from.isPaused()).toBe(true);
  });

  it('sends no close frame of its own after the sender’s close frame: the receiver gets only that one', async () => {
    const { from, frames, received, ended } = relay();
    const peerClose = Buffer.from([0x88, 6, 0x03, 0xe8, 0x64, 0x6f, 0x6e, 0x65]);
    from.write(peerClose);
    await settle();
    frames.stop();
    frames.closeWith(CLOSE);
    expect(await ended).toBe('ended');
    expect(received()).toEqual(peerClose);
  });

  it('sends no close frame of its own after the sender’s close frame it was finishing', async () => {
    const { from, frames, received, ended } = relay();
    const peerClose = Buffer.from([0x88, 6, 0x03, 0xe8, 0x64, 0x6f, 0x6e, 0x65]);
    from.write(peerClose.subarray(0, 3));
    await settle();
    frames.stop();
    frames.closeWith(CLOSE);
    from.write(peerClose.subarray(3));
    expect(await ended).toBe('ended');
    expect(received()).toEqual(peerClose);
  });
});
