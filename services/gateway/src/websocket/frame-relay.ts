import type { Duplex } from 'node:stream';
import { sendingState } from '@vantageedge/shared/http/send-timeout';
import { FrameBoundaries } from './frame-boundaries.js';

/**
 * The most of a frame in flight the gateway still relays once it closes the connection, before its close
 * frame; a longer rest is not waited for (the receiving side's connection is cut instead).
 */
export const MAX_FRAME_REST_BYTES = 1024 * 1024;

/**
 * One direction of a proxied WebSocket: what `from` sends is piped to `to` untouched, frame boundaries
 * followed as it goes. When the gateway closes the connection, `to` gets the gateway's close frame on a
 * boundary: a frame `from` is halfway through is relayed to its end first, within MAX_FRAME_REST_BYTES
 * and the caller's close grace, so its receiver learns why it was closed; a frame that cannot be finished
 * so — a longer rest, a length no peer sends, `from` ending first — gets `to` cut (an abnormal closure,
 * 1006) rather than a close frame inside its payload. Nothing else of the frames is checked (masking,
 * control frame sizes, fragmentation): the endpoints enforce RFC 6455, as behind any proxy that relays
 * bytes.
 */
export class FrameRelay {
  readonly #from: Duplex;
  readonly #to: Duplex;
  readonly #frames = new FrameBoundaries();
  readonly #observe = (chunk: Buffer) => this.#relayed(chunk);
  readonly #onCloseFrame: ((code: number) => void) | undefined;
  #bytes = 0;

  /** `onCloseFrame`: told the status code of the first close frame relayed this way, once it is. */
  constructor(from: Duplex, to: Duplex, onCloseFrame?: (code: number) => void) {
    this.#from = from;
    this.#to = to;
    this.#onCloseFrame = onCloseFrame;
  }

  /** The bytes relayed this way so far (the gateway's own close frame not counted). */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * Where sending to `to` stands, undefined when nothing waits for it: the same at two moments, `to`
   * took none of the bytes waiting for it in between.
   */
  get sendingState(): string | undefined {
    return sendingState(this.#to, this.#bytes);
  }

  #relayed(chunk: Buffer): void {
    const closedBefore = this.#frames.closeCode !== undefined;
    this.#frames.observe(chunk);
    this.#bytes += chunk.length;
    const code = this.#frames.closeCode;
    if (!closedBefore && code !== undefined) this.#onCloseFrame?.(code);
  }

  /** Bytes written to `to` before the relay starts (the origin's bytes after its 101, early client bytes). */
  sent(bytes: Buffer): void {
    if (bytes.length === 0) return;
    this.#to.write(bytes);
    this.#relayed(bytes);
  }

  start(): void {
    this.#from.pipe(this.#to);
    this.#from.on('data', this.#observe);
  }

  /** Nothing more is relayed (what `from` sends from now on is for `closeWith` to finish or drop). */
  stop(): void {
    this.#from.unpipe(this.#to);
    this.#from.off('data', this.#observe);
    // Read on and drop what still arrives, so `from`'s end is seen when its peer closes.
    this.#from.resume();
  }

  /**
   * Ends `to` with `closeFrame` on the next frame boundary, or cuts it when none comes; after `stop`. A
   * sender whose own close frame was relayed already is not made to send a second one (RFC 6455 §5.5.1:
   * nothing follows a close frame, and strict receivers fail the connection on a frame after it): `to`
   * then just ends.
   */
  closeWith(closeFrame: Buffer): void {
    const to = this.#to;
    if (!to.writable) return;
    if (this.#frames.atBoundary) {
      to.end(this.#unlessClosedBy(closeFrame));
      return;
    }
    if (
      !this.#frames.frameRestAtMost(MAX_FRAME_REST_BYTES) ||
      this.#from.readableEnded ||
      this.#from.destroyed
    ) {
      to.destroy();
      return;
    }
    const from = this.#from;
    // As while relaying, a receiver that reads slowly slows the sender down: the gateway holds no more
    // of the rest than it would of any frame (the close grace cuts one too slow to finish).
    const resume = () => from.resume();
    const finish = (chunk: Buffer) => {
      const length = this.#frames.observeToBoundary(chunk);
      const more = !to.writable || to.write(length === chunk.length ? chunk : chunk.subarray(0, length));
      this.#bytes += length;
      if (this.#frames.atBoundary) {
        done();
        if (to.writable) to.end(this.#unlessClosedBy(closeFrame));
      } else if (!this.#frames.frameRestAtMost(MAX_FRAME_REST_BYTES)) {
        cut();
      } else if (!more) {
        from.pause();
        to.once('drain', resume);
      }
    };
    const cut = () => {
      done();
      to.destroy();
    };
    // What `from` sends after the frame is read and dropped, so its end is seen.
    const done = () => {
      from.off('data', finish);
      from.off('end', cut);
      from.off('close', cut);
      to.off('drain', resume);
      from.resume();
    };
    from.on('data', finish);
    from.once('end', cut);
    from.once('close', cut);
  }

  /** The gateway's close frame, or none once the sender's own has been relayed. */
  #unlessClosedBy(closeFrame: Buffer): Buffer | undefined {
    return this.#frames.closeCode === undefined ? closeFrame : undefined;
  }
}
