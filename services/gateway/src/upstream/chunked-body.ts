/**
 * Follows the chunks of an answer's chunked body (RFC 9112 §7.1) as its bytes are read, without copying
 * them: a chunk's data is skipped by its size, and only its size line is looked at, so a body costs a few
 * steps per chunk. It finds where the last chunk's line ends, which is where the trailer section starts.
 */
export class ChunkedBodyEnd {
  #state: 'size' | 'extension' | 'data' | 'data-end' = 'size';
  #size = 0;
  #sizeDigits = 0;
  /** Bytes of the current chunk's data still to come. */
  #remaining = 0;

  /**
   * Where in `bytes` (what follows the bytes given before) the last chunk's line ends: the offset just
   * past its line feed; -1 when it ends past `bytes`; `unframed` when they are not chunks (a size that is
   * no hex number or too large to follow, data not ended by its line end), which undici refuses itself.
   */
  take(bytes: Buffer): number | 'unframed' {
    let at = 0;
    while (at < bytes.length) {
      switch (this.#state) {
        case 'size': {
          const digit = hexValue(bytes[at]!);
          if (digit < 0) {
            if (this.#sizeDigits === 0) return 'unframed';
            this.#state = 'extension';
            break;
          }
          // Sizes up to 2^52 stay exact (llhttp takes leading zeros, which add nothing).
          this.#sizeDigits++;
          if (this.#size >= 2 ** 48) return 'unframed';
          this.#size = this.#size * 16 + digit;
          at++;
          break;
        }
        case 'extension': {
          // Byte by byte: a size line's end is a byte or two away, nearer than a call into indexOf.
          while (at < bytes.length && bytes[at] !== 0x0a) at++;
          if (at === bytes.length) return -1;
          at++;
          if (this.#size === 0) return at;
          this.#remaining = this.#size;
          this.#size = 0;
          this.#sizeDigits = 0;
          this.#state = 'data';
          break;
        }
        case 'data': {
          const skipped = Math.min(this.#remaining, bytes.length - at);
          this.#remaining -= skipped;
          at += skipped;
          if (this.#remaining === 0) this.#state = 'data-end';
          break;
        }
        case 'data-end': {
          const byte = bytes[at++]!;
          if (byte === 0x0a) this.#state = 'size';
          else if (byte !== 0x0d) return 'unframed';
          break;
        }
      }
    }
    return -1;
  }
}

function hexValue(byte: number): number {
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  const lower = byte | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}

/**
 * Whether an answer head says its body is chunked: the last coding its Transfer-Encoding fields name is
 * `chunked` (as llhttp reads them; another last coding makes the body run to the connection's close).
 * `head` is the head's bytes as a latin1 string (one character per byte): its lines are found with
 * the engine's indexOf, a line's name is compared where it starts with `t` or `T`, and only a
 * Transfer-Encoding field's value becomes a string (an answer without one, nearly every answer, makes
 * no other string and runs no expression).
 */
export function headSaysChunked(head: string): boolean {
  let chunked = false;
  for (let at = head.indexOf('\n'); at >= 0; at = head.indexOf('\n', at + 1)) {
    if (!namesTransferEncoding(head, at + 1)) continue;
    const start = at + 1 + TRANSFER_ENCODING_NAME.length;
    let end = start;
    while (end < head.length && head.charCodeAt(end) !== 0x0d && head.charCodeAt(end) !== 0x0a) end++;
    const value = head.slice(start, end);
    // As llhttp: a field of blanks alone leaves the last coding as it was, any other (commas alone too)
    // sets it.
    if (/[^ \t]/.test(value)) chunked = LAST_CODING_CHUNKED.test(value);
    at = end - 1;
  }
  return chunked;
}

/** `transfer-encoding:` in lower case: a field name is compared without regard to ASCII case. */
const TRANSFER_ENCODING_NAME = 'transfer-encoding:';

/** Whether `head` has `Transfer-Encoding:` (any ASCII case) at `from`. */
function namesTransferEncoding(head: string, from: number): boolean {
  if (from + TRANSFER_ENCODING_NAME.length > head.length || (head.charCodeAt(from) | 0x20) !== 0x74)
    return false;
  for (let i = 1; i < TRANSFER_ENCODING_NAME.length; i++) {
    const expected = TRANSFER_ENCODING_NAME.charCodeAt(i);
    const code = head.charCodeAt(from + i);
    // Letters match in either case; `-` and `:` only as they are.
    if (code !== expected && (expected < 0x61 || (code | 0x20) !== expected)) return false;
  }
  return true;
}

/**
 * `chunked` as the field's last coding, as llhttp reads it: after the value's start or a comma and blanks,
 * followed by spaces alone (a tab or a comma after it leaves the body running to the connection's close).
 */
const LAST_CODING_CHUNKED = /(?:^|,)[ \t]*chunked *$/i;
