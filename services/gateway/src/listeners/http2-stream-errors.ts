import { constants, type Http2Session, type Http2Stream } from 'node:http2';

/** nghttp2's NGHTTP2_ERR_PROTO, the errno of the error node destroys the session with for it. */
const NGHTTP2_ERR_PROTO = -505;

function isNghttp2ProtocolError(error: unknown): error is Error {
  return (
    error instanceof Error &&
    (error as NodeJS.ErrnoException).code === 'ERR_HTTP2_ERROR' &&
    (error as NodeJS.ErrnoException).errno === NGHTTP2_ERR_PROTO
  );
}

/**
 * A malformed request is a stream error (RFC 9113 §8.1.1): RST_STREAM PROTOCOL_ERROR for that stream,
 * the session's other streams untouched. nghttp2 does that for a request whose DATA goes past its
 * `content-length`, but it also reports the frame as invalid, and node (24) destroys the whole session
 * for any invalid frame reported as a protocol error (GOAWAY INTERNAL_ERROR): every other request on
 * the connection — a CDN or a mesh multiplexes many users' requests on one — would be cut with it.
 *
 * nghttp2 reports connection errors the same way (it then sends GOAWAY PROTOCOL_ERROR and reads no
 * more, but leaves the socket to node), and node raises the same error for an unsolicited PING ACK.
 * So the destroy node asks for waits until nghttp2's queued frames have gone out (node writes them
 * right after the bytes it read, before the next check phase), then goes ahead unless, for each such
 * error, a stream open at the time was reset with PROTOCOL_ERROR: a connection error resets none, as
 * nghttp2 reads nothing more after one. Were the resets ever later, the session would end as node ends
 * it. The cap on invalid frames per session (maxSessionInvalidFrames) raises another error and still
 * ends the session at once.
 */
export function confineStreamErrors(session: Http2Session): void {
  const open = new Set<Http2Stream>();
  /** The protocol errors not settled yet, and the streams one of them may have reset. */
  let pending: { errors: number; first: Error; watched: Set<Http2Stream> } | undefined;
  session.on('stream', (stream: Http2Stream) => {
    open.add(stream);
    pending?.watched.add(stream);
    stream.once('close', () => open.delete(stream));
  });
  const destroy = session.destroy.bind(session);

  const settle = (code: number | undefined) => {
    if (pending === undefined || session.destroyed) return;
    const { errors, first, watched } = pending;
    pending = undefined;
    let reset = 0;
    for (const stream of watched) if (stream.rstCode === constants.NGHTTP2_PROTOCOL_ERROR) reset++;
    if (reset < errors) destroy(first, code);
  };

  session.destroy = (error?: Error, code?: number): void => {
    if (session.destroyed || !isNghttp2ProtocolError(error)) {
      destroy(error, code);
      return;
    }
    if (pending !== undefined) {
      pending.errors++;
      return;
    }
    const watched = new Set([...open].filter((stream) => !stream.closed));
    pending = { errors: 1, first: error, watched };
    setImmediate(settle, code);
  };
}
