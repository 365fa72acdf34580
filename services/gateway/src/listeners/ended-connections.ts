import type { Http2Session, ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';

/**
 * The connections of a listener's HTTP/2 sessions, let go once their session is over. When a session
 * ends (GOAWAY at the idle timeout, the request budget or a stop, then its last stream done; a
 * connection error), node keeps its socket until the client has taken every byte queued for it and
 * closed its own side. A client that does neither (it reads nothing) would hold the socket, those
 * bytes, its GATEWAY_MAX_CONNECTIONS slot and its address's slot for ever, at the cost of one idle
 * connection. So the socket of a session found over at two checks `timeoutMs` apart is destroyed: one
 * check per listener over its connections, not a timer per connection. A session closing gracefully
 * is not over while a stream is open (a long download during a stop is let finish); a stream whose
 * header block never ended (HEADERS without the CONTINUATION that ends it) does not count: node's
 * graceful close would wait for it for ever, though the session can carry nothing until it ends.
 */
export class EndedConnections {
  /** Each connection, its session, its open streams, and whether it was over at the last check. */
  readonly #connections = new Map<
    Socket,
    { session: Http2Session; openStreams: number; overAtLastCheck: boolean }
  >();
  readonly #timeoutMs: number;
  #check: NodeJS.Timeout | undefined;

  /** `timeoutMs` 0: a client may keep the connection of an ended session as long as it likes. */
  constructor(timeoutMs: number) {
    this.#timeoutMs = timeoutMs;
  }

  watch(session: Http2Session, socket: Socket): void {
    if (this.#timeoutMs <= 0) return;
    const connection = { session, openStreams: 0, overAtLastCheck: false };
    this.#connections.set(socket, connection);
    socket.once('close', () => this.#connections.delete(socket));
    session.on('stream', (stream: ServerHttp2Stream) => {
      connection.openStreams += 1;
      // This listener is the connection's, not the request's: it leaves node's leak warning the margin it
      // had (a WebSocket's stream holds ten of the request's own, and a warning per stream would flood the log).
      stream.setMaxListeners(stream.getMaxListeners() + 1);
      stream.once('close', () => {
        connection.openStreams -= 1;
      });
    });
    if (this.#check === undefined) {
      this.#check = setInterval(() => this.#destroyLingering(), this.#timeoutMs);
      this.#check.unref();
    }
  }

  #destroyLingering(): void {
    for (const [socket, connection] of this.#connections) {
      const { session } = connection;
      if (connection.overAtLastCheck) socket.destroy();
      // Destroyed: node has ended the socket or waits for a write the client does not take to end it.
      // Closed with no stream open: node waits for the client to finish a header block or to take
      // what is queued for it.
      else
        connection.overAtLastCheck =
          session.destroyed || socket.writableEnded || (session.closed && connection.openStreams === 0);
    }
  }
}
