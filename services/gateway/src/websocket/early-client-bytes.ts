import type { Duplex } from 'node:stream';

/** What a client may send before its WebSocket is paired with the origin's; past it, it is closed. */
export const MAX_EARLY_CLIENT_BYTES = 64 * 1024;

/**
 * Reads a client's connection from its upgrade request until the origin's WebSocket is paired with it.
 * node leaves the connection unread after its `upgrade` event, so a client that left was not seen until
 * the origin answered or timed out: its origin request, lease and WebSocket slot stayed held, and
 * nothing was logged. Read, its end closes it at once. What it sends meanwhile (a client may send frames
 * right after its request) is kept for the origin, at most MAX_EARLY_CLIENT_BYTES.
 *
 * Returns the function that stops reading and hands over the bytes kept (`head` first).
 */
export function readUntilPaired(socket: Duplex, head: Buffer): () => Buffer {
  const chunks: Buffer[] = head.length > 0 ? [head] : [];
  let bytes = head.length;
  const onData = (chunk: Buffer) => {
    bytes += chunk.length;
    if (bytes > MAX_EARLY_CLIENT_BYTES) socket.destroy();
    else chunks.push(chunk);
  };
  const onEnd = () => socket.destroy();
  socket.on('data', onData);
  socket.on('end', onEnd);
  return () => {
    socket.off('data', onData);
    socket.off('end', onEnd);
    socket.pause();
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
  };
}
