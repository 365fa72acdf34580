/** The longest frame header (RFC 6455 §5.2): 2 bytes, a 64-bit length, a masking key. */
const MAX_HEADER_BYTES = 14;
const CLOSE_OPCODE = 0x8;
/** RFC 6455 §7.4.1: what a close frame without a status code is reported as. */
const CLOSE_NO_STATUS = 1005;
/** A 64-bit length's upper 32 bits from which it is no safe integer (2^53 and up): a length no peer sends. */
const UNSAFE_LENGTH_HIGH_BITS = 2 ** 21;

/**
 * Follows the frames of one direction of a relayed WebSocket header by header, never holding a
 * payload: whether what has been relayed so far ends between two frames, the only place a frame of the
 * gateway's own (its close frame) can go without being read as part of another frame's payload.
 *
 * A header is read where it lies in the chunk and a payload skipped by its length, so the cost is per frame
 * and per chunk, not per byte: only a header split between two chunks is gathered byte by byte.
 */
export class FrameBoundaries {
  /** The bytes of a header split between chunks, gathered until it is whole. */
  readonly #header = Buffer.alloc(MAX_HEADER_BYTES);
  #headerBytes = 0;
  #payloadLeft = 0;
  /** A length no peer sends (a 64-bit one with its top bit set, RFC 6455 §5.2): no boundary is known. */
  #lost = false;
  /** The status code of the first close frame (its first two payload bytes, unmasked), once read. */
  #closeCode: number | undefined;
  /** While the first close frame's status code is read: its masking key (0 when unmasked), the bytes so far. */
  #readingCloseCode = false;
  #closeMask = 0;
  #closeCodeBytes = 0;
  #closeCodeFirstByte = 0;

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
    const end = chunk.length;
    let at = 0;
    while (at < end && !this.#lost) {
      if (this.#payloadLeft > 0) at = this.#payload(chunk, at);
      else if (this.#headerBytes > 0 || !wholeHeaderAt(chunk, at)) at = this.#headerByte(chunk, at);
      else if (stopAtBoundary) at = this.#headerAt(chunk, at);
      else {
        const afterShortFrames = this.#skipShortFrames(chunk, at);
        at = afterShortFrames > at ? afterShortFrames : this.#headerAt(chunk, at);
      }
      if (stopAtBoundary && this.atBoundary) break;
    }
    return this.#lost ? end : at;
  }

  /**
   * The whole frames of a 7-bit length from `at` (chat messages, pings, a flood of tiny frames) that need
   * nothing read: skipped in one loop, nothing of the tracker's changed. Where they stop.
   */
  #skipShortFrames(chunk: Buffer, at: number): number {
    const end = chunk.length;
    const closeCodeKnown = this.#closeCode !== undefined;
    while (end - at >= 2) {
      const second = chunk[at + 1] as number;
      const length7 = second & 0x7f;
      if (length7 > 125 || (!closeCodeKnown && ((chunk[at] as number) & 0x0f) === CLOSE_OPCODE)) break;
      const frameEnd = at + (second & 0x80 ? 6 : 2) + length7;
      if (frameEnd > end) break;
      at = frameEnd;
    }
    return at;
  }

  /** Payload bytes from `at`: skipped, but for the first close frame's status code. Where they end. */
  #payload(chunk: Buffer, at: number): number {
    if (this.#readingCloseCode) {
      this.#readCloseCode(chunk[at] as number);
      this.#payloadLeft--;
      return at + 1;
    }
    const skipped = Math.min(this.#payloadLeft, chunk.length - at);
    this.#payloadLeft -= skipped;
    return at + skipped;
  }

  /** One byte of a header split between chunks; read once whole. */
  #headerByte(chunk: Buffer, at: number): number {
    const header = this.#header;
    header[this.#headerBytes++] = chunk[at] as number;
    if (this.#headerBytes >= 2 && this.#headerBytes === headerLength(header[1] as number)) {
      this.#headerBytes = 0;
      this.#headerAt(header, 0);
    }
    return at + 1;
  }

  /** The whole header at `at` in `bytes`: its frame's payload is next. Where the header ends. */
  #headerAt(bytes: Buffer, at: number): number {
    const first = bytes[at] as number;
    const second = bytes[at + 1] as number;
    const length7 = second & 0x7f;
    let end = at + 2;
    if (length7 < 126) this.#payloadLeft = length7;
    else if (length7 === 126) {
      this.#payloadLeft = ((bytes[at + 2] as number) << 8) | (bytes[at + 3] as number);
      end += 2;
    } else {
      const high = bytes.readUInt32BE(at + 2);
      if (high >= UNSAFE_LENGTH_HIGH_BITS) this.#lost = true;
      else this.#payloadLeft = high * 2 ** 32 + bytes.readUInt32BE(at + 6);
      end += 8;
    }
    const masked = (second & 0x80) !== 0;
    if (masked) end += 4;
    if ((first & 0x0f) === CLOSE_OPCODE && this.#closeCode === undefined) {
      this.#startCloseCode(masked ? bytes.readUInt32BE(end - 4) : 0);
    }
    return end;
  }

  /** The first close frame's header was read: its status code is its first two payload bytes, if any. */
  #startCloseCode(mask: number): void {
    if (this.#payloadLeft < 2) {
      this.#closeCode = CLOSE_NO_STATUS;
      return;
    }
    this.#readingCloseCode = true;
    this.#closeMask = mask;
    this.#closeCodeBytes = 0;
  }

  /** One payload byte of the first close frame, while its status code is incomplete. */
  #readCloseCode(byte: number): void {
    const unmasked = byte ^ ((this.#closeMask >>> (24 - 8 * this.#closeCodeBytes)) & 0xff);
    if (this.#closeCodeBytes++ === 0) {
      this.#closeCodeFirstByte = unmasked;
      return;
    }
    this.#closeCode = (this.#closeCodeFirstByte << 8) | unmasked;
    this.#readingCloseCode = false;
  }
}

/** Whether `chunk` holds a whole header at `at`. */
function wholeHeaderAt(chunk: Buffer, at: number): boolean {
  const left = chunk.length - at;
  return left >= 2 && left >= headerLength(chunk[at + 1] as number);
}

/** A header's length (RFC 6455 §5.2), from its second byte. */
function headerLength(second: number): number {
  const length7 = second & 0x7f;
  const extendedLength = length7 === 126 ? 2 : length7 === 127 ? 8 : 0;
  const maskingKey = second & 0x80 ? 4 : 0;
  return 2 + extendedLength + maskingKey;
}
