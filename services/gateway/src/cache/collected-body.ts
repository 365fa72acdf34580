/** The size of the blocks a collected body is copied into. */
const BLOCK_BYTES = 16 * 1024;

/**
 * A response body collected chunk by chunk, holding about its bytes whatever the size of its chunks:
 * they are copied into blocks, and only the last block is partly empty. Kept as they came, an origin's
 * chunks would cost far more than their bytes: each a Buffer object of its own (a body in 1-byte chunks,
 * ~100 bytes per byte) that also keeps alive the whole socket read it is a view of.
 */
export class CollectedBody {
  readonly #blocks: Buffer[] = [];
  /** Bytes used in the last block. */
  #lastUsed = BLOCK_BYTES;

  append(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.#lastUsed === BLOCK_BYTES) {
        this.#blocks.push(Buffer.allocUnsafeSlow(BLOCK_BYTES));
        this.#lastUsed = 0;
      }
      const copied = chunk.copy(this.#blocks.at(-1)!, this.#lastUsed, offset);
      this.#lastUsed += copied;
      offset += copied;
    }
  }

  /** The whole body, in one buffer. */
  concat(): Buffer {
    const length = this.#blocks.length === 0 ? 0 : (this.#blocks.length - 1) * BLOCK_BYTES + this.#lastUsed;
    return Buffer.concat(this.#blocks, length);
  }
}
