import { constants, type Http2Session, type ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';

/** Bytes any session may read beyond what its requests carry: the preface, SETTINGS, PINGs, a few resets. */
const BASE_ALLOWANCE_BYTES = 256 * 1024;
/**
 * Bytes read per body byte: DATA frame headers (9 bytes, so a body sent one byte per frame), and the
 * client's share of flow control and PINGs of a long upload.
 */
const PER_BODY_BYTE = 10;
/** How often the listener's sessions are checked: what one connection's flood gets before its end. */
const CHECK_INTERVAL_MS = 250;

interface Ledger {
  readonly session: Http2Session;
  streams: number;
  bodyBytes: number;
}

/**
 * What an HTTP/2 connection may read that moves none of its requests forward. nghttp2 bounds the
 * frames that queue an answer (PING and SETTINGS ACKs), invalid and empty frames and stream resets, but
 * not WINDOW_UPDATE: a client sending increments of 1 (on the connection, an open or a closed stream)
 * has each parsed with nothing queued and no JS event, millions a second, for as long as it likes
 * (Envoy bounds them with max_inbound_window_update_frames_per_data_frame_sent). So a connection's
 * bytes read, less its streams' body bytes, are held to a budget: a base, each stream's header block
 * (up to GATEWAY_MAX_HEADER_BYTES), each body byte's framing, and as much as the gateway wrote to it
 * (a client's WINDOW_UPDATEs and PINGs follow what it is sent; a flood the client must read back costs
 * it as much as the replica). Past it, the session is ended with GOAWAY ENHANCE_YOUR_CALM. One check per
 * listener over its connections, not a timer per connection.
 */
export class Http2ReadBudget {
  readonly #connections = new Map<Socket, Ledger>();
  readonly #perStreamBytes: number;
  readonly #onEnded: () => void;
  #check: NodeJS.Timeout | undefined;

  /**
   * `maxHeaderBytes`: GATEWAY_MAX_HEADER_BYTES, the largest header block a stream may bring; `onEnded`:
   * told of each session ended past its budget.
   */
  constructor(maxHeaderBytes: number, onEnded: () => void = () => {}) {
    this.#perStreamBytes = maxHeaderBytes + 1024;
    this.#onEnded = onEnded;
  }

  watch(session: Http2Session, socket: Socket): void {
    const ledger: Ledger = { session, streams: 0, bodyBytes: 0 };
    this.#connections.set(socket, ledger);
    socket.once('close', () => this.#connections.delete(socket));
    session.on('stream', (stream: ServerHttp2Stream) => {
      ledger.streams += 1;
      // Every DATA byte of the stream reaches its readers through push, whoever reads it (the
      // request, a WebSocket's relay).
      const push = stream.push.bind(stream);
      stream.push = (chunk: unknown, encoding?: BufferEncoding) => {
        if (chunk instanceof Uint8Array) ledger.bodyBytes += chunk.byteLength;
        return push(chunk, encoding);
      };
    });
    if (this.#check === undefined) {
      this.#check = setInterval(() => this.#endFloods(), CHECK_INTERVAL_MS);
      this.#check.unref();
    }
  }

  #endFloods(): void {
    for (const [socket, { session, streams, bodyBytes }] of this.#connections) {
      if (session.destroyed) continue;
      const unproductive = socket.bytesRead - bodyBytes;
      const allowance =
        BASE_ALLOWANCE_BYTES +
        streams * this.#perStreamBytes +
        bodyBytes * PER_BODY_BYTE +
        socket.bytesWritten;
      if (unproductive <= allowance) continue;
      session.destroy(undefined, constants.NGHTTP2_ENHANCE_YOUR_CALM);
      this.#onEnded();
    }
  }
}
