/** The longest frame header (RFC 6455 §5.2): 2 bytes, a 64-bit length, a masking key. */
const MAX_HEADER_BYTES = 14;
const CLOSE_OPCODE = 0x8;
/** RFC 6455 §7.4.1: what a close frame without a status code is reported as. */
const CLOSE_NO_STATUS = 1005;

/**
 * Follows the frames of one direction of a relayed WebSocket header by header, never holding a
 * payload: whether what has been relayed so far ends between two frames, the only place a frame of the
 * gateway's own (its close frame) can go without being read as part of another frame's payload.
 */
export class FrameBoundaries {
  readonly #header = Buffer.alloc(MAX_HEADER_BYTES);
  #headerBytes = 0;
  #payloadLeft = 0;
  /** A length no peer sends (a 64-bit one with its top bit set, RFC 6455 §5.2): no boundary is known. */
  #lost = false;
  /** The status code of the first close frame (its first two payload bytes, unmasked), once read. */
  #closeCode: number | undefined;
  /** The first close frame's masking key and the status code bytes read so far, while it is read. */
  #closeMask: Buffer | undefined;
  #closeCodeBytes: number[] = [];

  /** The status code of the first close frame relayed this way (1005 for one without), if any yet. */
  get closeCode(): number | undefined {
    return this.#closeCode;
  }

  get atBoundary(): boolean {
    return !this.#lost && this.#headerBytes === 0 && this.#payloadLeft === 0;
  }

  /** Bytes relayed in this direction, in order. */
  observe(chunk: Buffer): void {
    this.#advance(chunk, false);
  }

  /**
   * The first bytes of `chunk`, up to the end of the frame in flight, are relayed: how many (all of them
   * when the frame goes on past `chunk`).
   */
  observeToBoundary(chunk: Buffer): number {
    return this.#advance(chunk, true);
  }

  /**
   * Whether the frame in flight has at most `limit` payload bytes still to come; true while its header is
   * still incomplete (its length not yet known), false for a length no peer sends.
   */
  frameRestAtMost(limit: number): boolean {
    return !this.#lost && this.#payloadLeft <= limit;
  }

  #advance(chunk: Buffer, stopAtBoundary: boolean): number {
    let at = 0;
    while (at < chunk.length && !this.#lost) {
      if (this.#payloadLeft > 0 && this.#closeMask !== undefined) {
        this.#readCloseCode(chunk[at++] as number);
        this.#payloadLeft--;
      } else if (this.#payloadLeft > 0) {
        const skipped = Math.min(this.#payloadLeft, chunk.length - at);
        this.#payloadLeft -= skipped;
        at += skipped;
      } else {
        this.#header[this.#headerBytes++] = chunk[at++] as number;
        if (this.#headerBytes === headerLength(this.#header, this.#headerBytes)) this.#startPayload();
      }
      if (stopAtBoundary && this.atBoundary) break;
    }
    return this.#lost ? chunk.length : at;
  }

  #startPayload(): void {
    const headerBytes = this.#headerBytes;
    const length7 = (this.#header[1] as number) & 0x7f;
    this.#headerBytes = 0;
    if (length7 < 126) this.#payloadLeft = length7;
    else if (length7 === 126) this.#payloadLeft = this.#header.readUInt16BE(2);
    else {
      const length = this.#header.readBigUInt64BE(2);
      if (length > BigInt(Number.MAX_SAFE_INTEGER)) this.#lost = true;
      else this.#payloadLeft = Number(length);
    }
    if (this.#closeCode !== undefined || ((this.#header[0] as number) & 0x0f) !== CLOSE_OPCODE) return;
    if (this.#payloadLeft < 2) {
      this.#closeCode = CLOSE_NO_STATUS;
      return;
    }
    const masked = ((this.#header[1] as number) & 0x80) !== 0;
    this.#closeMask = masked
      ? Buffer.from(this.#header.subarray(headerBytes - 4, headerBytes))
      : Buffer.alloc(4);
  }

  /** One payload byte of the first close frame, while its status code is incomplete. */
  #readCloseCode(byte: number): void {
    const mask = this.#closeMask as Buffer;
    this.#closeCodeBytes.push(byte ^ (mask[this.#closeCodeBytes.length] as number));
    if (this.#closeCodeBytes.length < 2) return;
    this.#closeCode = ((this.#closeCodeBytes[0] as number) << 8) | (this.#closeCodeBytes[1] as number);
    this.#closeMask = undefined;
  }
}

/** The header's length once its first two bytes are known; before that, undefined. */
function headerLength(header: Buffer, known: number): number | undefined {
  if (known < 2) return undefined;
  const second = header[1] as number;
  const length7 = second & 0x7f;
  const extendedLength = length7 === 126 ? 2 : length7 === 127 ? 8 : 0;
  const maskingKey = second & 0x80 ? 4 : 0;
  return 2 + extendedLength + maskingKey;
}
