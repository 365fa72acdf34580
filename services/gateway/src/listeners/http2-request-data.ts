import { subscribe } from 'node:diagnostics_channel';
import type { Http2Session, ServerHttp2Stream } from 'node:http2';

/**
 * DATA frames smaller than this are copied into their stream's block instead of being kept as node hands
 * them over. Larger ones (browsers, curl and node send up to the 16 KiB frame size) stay as they are: their
 * bytes outweigh the object holding them.
 */
const SMALL_DATA_BYTES = 1024;
/**
 * The blocks small frames are copied into: unread bytes of one stream, in order. A stream's first block
 * holds one small frame whole and each next one is twice the last, up to BLOCK_BYTES: most request bodies
 * are a few hundred bytes, and a 16 KiB block for each would cost hundreds of times their bytes on every
 * stream that waits unread.
 */
const FIRST_BLOCK_BYTES = SMALL_DATA_BYTES;
const BLOCK_BYTES = 16 * 1024;

const compacted = new WeakSet<Http2Session>();
let subscribed = false;

/**
 * A request body the gateway has not read yet (its request waits in a stage or for an origin connection, or
 * its origin reads slowly) waits in its stream as node hands it over: each DATA frame a Buffer of its own,
 * an object of about a hundred bytes that is also a view keeping the whole socket read it came in alive, up
 * to the stream's flow-control window. A client sending one byte per frame made each byte cost hundreds, on
 * every stream of every connection. On this session's streams small frames are copied into blocks instead,
 * handed to the stream as one chunk per block (or per event-loop turn while its reader keeps up), so unread
 * bytes cost about their size, as Envoy's and nghttpx's buffers do. Hooked where node creates the stream,
 * before any 'stream' listener (the session's byte budget among them) wraps what node pushes.
 */
export function compactRequestData(session: Http2Session): void {
  if (!subscribed) {
    subscribed = true;
    subscribe('http2.server.stream.created', (message) => {
      const { stream } = message as { stream: ServerHttp2Stream };
      if (compacted.has(stream.session as Http2Session)) copySmallFrames(stream);
    });
  }
  compacted.add(session);
}

function copySmallFrames(stream: ServerHttp2Stream): void {
  const push = stream.push.bind(stream);
  const read = stream._read.bind(stream);
  let block: Buffer | undefined;
  let nextBlockBytes = FIRST_BLOCK_BYTES;
  /** Bytes of `block` written, and those of them already handed to the stream. */
  let written = 0;
  let handed = 0;
  let scheduled = false;

  const handOver = (): void => {
    if (block === undefined || handed === written) return;
    const chunk = block.subarray(handed, written);
    handed = written;
    if (written === block.length) block = undefined;
    if (!stream.destroyed) push(chunk);
  };
  // Once per turn, to a reader that took all it had (it may be waiting for more), or one reading on
  // 'readable', which node tells of every push (it may take part of what it has each time and wait for the
  // next). Otherwise bytes that would wait behind unread ones stay in the block, so a client whose frames
  // come a few per socket read still costs one chunk per block, not one per read: a reader that takes what
  // it has asks for the rest (_read).
  const endOfTurn = (): void => {
    scheduled = false;
    if (stream.readableLength === 0 || stream.listenerCount('readable') > 0) handOver();
  };

  stream._read = (size: number): void => {
    handOver();
    read(size);
  };
  stream.push = (chunk: unknown, encoding?: BufferEncoding): boolean => {
    if (!(chunk instanceof Uint8Array) || chunk.byteLength >= SMALL_DATA_BYTES) {
      handOver();
      return push(chunk, encoding);
    }
    let from = 0;
    while (from < chunk.byteLength) {
      if (block === undefined) {
        block = Buffer.allocUnsafeSlow(nextBlockBytes);
        nextBlockBytes = Math.min(BLOCK_BYTES, 2 * nextBlockBytes);
        written = 0;
        handed = 0;
      }
      const copied = Math.min(chunk.byteLength - from, block.length - written);
      block.set(chunk.subarray(from, from + copied), written);
      written += copied;
      from += copied;
      if (written === block.length) handOver();
    }
    if (!scheduled && block !== undefined && handed < written) {
      scheduled = true;
      setImmediate(endOfTurn);
    }
    // Whether node keeps reading the stream (else its window stays shut): the bytes it holds, these included.
    return stream.readableLength + (written - handed) < stream.readableHighWaterMark;
  };
}
