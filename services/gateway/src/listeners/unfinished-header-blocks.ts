import type { Http2Session, ServerHttp2Stream } from 'node:http2';

interface Watched {
  /** The highest stream id the gateway was handed (its header block ended). */
  highestHandedStream: number;
  /** Stream ids up to this one are known to have no block open (a PING's ACK came after them). */
  noBlockUpTo: number;
  /** The stream whose header block looked open at the last check; 0 for none. */
  openBlockAtLastCheck: number;
  openStreams: number;
}

/**
 * A request's header block left unfinished: HEADERS without END_HEADERS, then no CONTINUATION that ends
 * it. Until it ends the session can carry nothing else (any other frame is a connection error), and no
 * stream reaches the gateway, so neither the request timeout nor, for minutes, the idle timeout ends it;
 * an HTTP/1.1 head that never ends is given GATEWAY_HEADERS_TIMEOUT_MS, and so is this block (Envoy's
 * request_headers_timeout). nghttp2 tells of a block only when it ends, but its last processed stream id
 * moves when a block begins: a session where it is past the last stream handed to the gateway at two
 * checks `timeoutMs` apart, on the same stream, is ended (GOAWAY). A stream nghttp2 refused itself (a
 * malformed header block, one past the concurrent streams) looks the same, so the first check also sends
 * a PING: its ACK, a frame no open block allows, clears the session. Streams open on the session are let
 * finish (graceful GOAWAY); then EndedConnections lets the connection go. One check per listener over
 * its sessions, not a timer per session.
 */
export class UnfinishedHeaderBlocks {
  readonly #sessions = new Map<Http2Session, Watched>();
  readonly #timeoutMs: number;
  #check: NodeJS.Timeout | undefined;

  /** `timeoutMs` 0: a header block may stay unfinished as long as the session is not idle. */
  constructor(timeoutMs: number) {
    this.#timeoutMs = timeoutMs;
  }

  watch(session: Http2Session): void {
    if (this.#timeoutMs <= 0) return;
    const watched: Watched = {
      highestHandedStream: 0,
      noBlockUpTo: 0,
      openBlockAtLastCheck: 0,
      openStreams: 0,
    };
    this.#sessions.set(session, watched);
    session.once('close', () => this.#sessions.delete(session));
    session.on('stream', (stream: ServerHttp2Stream) => {
      const id = stream.id ?? 0;
      if (id > watched.highestHandedStream) watched.highestHandedStream = id;
      watched.openStreams += 1;
      // The session's listener, not the request's: node's leak warning keeps the margin it had (see
      // EndedConnections).
      stream.setMaxListeners(stream.getMaxListeners() + 1);
      stream.once('close', () => {
        watched.openStreams -= 1;
      });
    });
    if (this.#check === undefined) {
      this.#check = setInterval(() => this.#endStalled(), this.#timeoutMs);
      this.#check.unref();
    }
  }

  #endStalled(): void {
    for (const [session, watched] of this.#sessions) {
      if (session.destroyed) continue;
      const begun = session.state.lastProcStreamID ?? 0;
      const openBlock = begun > watched.highestHandedStream && begun > watched.noBlockUpTo ? begun : 0;
      if (openBlock === 0 || openBlock !== watched.openBlockAtLastCheck) {
        watched.openBlockAtLastCheck = openBlock;
        if (openBlock !== 0) askForAck(session, watched, openBlock);
        continue;
      }
      // node's graceful close would wait for the unfinished stream for ever.
      if (watched.openStreams === 0) session.destroy();
      else if (!session.closed) session.close();
    }
  }
}

/**
 * A PING: its ACK, taken by nghttp2 after the stream `begun` began, shows that stream's block was not
 * open then (ended, or the stream refused). Streams begun later are not cleared by it.
 */
function askForAck(session: Http2Session, watched: Watched, begun: number): void {
  session.ping((error) => {
    if (error === null) watched.noBlockUpTo = Math.max(watched.noBlockUpTo, begun);
  });
}
