import { constants, type Http2Session, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import { REQUEST_TIMEOUT_BODY, REQUEST_TIMEOUT_BODY_BYTES } from '../http/client-errors.js';
import { responseOnStream } from '../http/gateway-http2-response.js';
import { answeredByListener } from '../http/listener-answers.js';
import { EndedConnections } from './ended-connections.js';
import { Http2ReadBudget } from './http2-read-budget.js';
import { compactRequestData } from './http2-request-data.js';
import { confineStreamErrors } from './http2-stream-errors.js';
import { UnfinishedHeaderBlocks } from './unfinished-header-blocks.js';

/**
 * What node's HTTP/2 servers would otherwise take from their defaults, set on both (TLS and h2c) so they
 * are the gateway's choice: a session's memory (header tables, queued frames, unacknowledged PINGs and
 * SETTINGS; new streams refused past it), SETTINGS entries, outstanding PINGs, invalid frames and
 * refused streams before the session is closed, streams a client may reset (a burst, then per second:
 * the rapid-reset attack), and how long a connection that chose no protocol is kept. nghttp2 has no bound
 * for WINDOW_UPDATE frames: Http2ReadBudget is the gateway's.
 */
export const HTTP2_SESSION_PROTECTION = {
  maxSessionMemory: 10,
  maxSettings: 32,
  maxOutstandingPings: 10,
  maxSessionInvalidFrames: 1000,
  maxSessionRejectedStreams: 100,
  streamResetBurst: 1000,
  streamResetRate: 33,
  unknownProtocolTimeout: 10_000,
} as const;

/** What an HTTP/2 session of a traffic listener may hold, as HTTP/1.1 connections are held to it. */
export interface Http2SessionLimits {
  /**
   * GATEWAY_HTTP2_IDLE_TIMEOUT_SECONDS: a session with no traffic for this long gets GOAWAY (0: never),
   * unless it carries an open WebSocket (their own idle timeout closes those).
   */
  readonly idleTimeoutMs: number;
  /**
   * GATEWAY_REQUEST_TIMEOUT_MS: a stream whose request (headers and body) has not all arrived after this
   * long is answered 408 and reset (0: never). PINGs keep a session from being idle, so without it a
   * client could hold every stream of every session open forever with a body that never comes.
   */
  readonly requestTimeoutMs?: number;
  /** GATEWAY_MAX_REQUESTS_PER_CONNECTION: streams a session is given before GOAWAY (0: no limit). */
  readonly maxRequests?: number;
  /**
   * GATEWAY_HEADERS_TIMEOUT_MS: how long a client has to open its session (its preface and SETTINGS, as
   * an HTTP/1.1 client has to send a request head), to end a request's header block once begun (see
   * UnfinishedHeaderBlocks), and to close its side of a connection whose session has ended (see
   * EndedConnections). 0: as long as it likes.
   */
  readonly headersTimeoutMs?: number;
  /**
   * GATEWAY_MAX_HEADER_BYTES: the header block a stream may bring, in what a session may read beside
   * its requests' bodies (see Http2ReadBudget). Default 16 KiB.
   */
  readonly maxHeaderBytes?: number;
  /** Told of each session the read budget ends (the replica's metric). */
  readonly onOverReadBudget?: () => void;
}

/**
 * The open HTTP/2 sessions of a listener: their limits, and a graceful stop (GOAWAY lets the streams
 * in flight finish and refuses new ones; what is still open at the deadline is destroyed).
 */
export class Http2Sessions {
  readonly #open = new Set<Http2Session>();
  readonly #limits: Http2SessionLimits;
  readonly #connections: EndedConnections;
  readonly #reads: Http2ReadBudget;
  readonly #headerBlocks: UnfinishedHeaderBlocks;
  #closing = false;

  constructor(limits: Http2SessionLimits) {
    this.#limits = limits;
    this.#connections = new EndedConnections(limits.headersTimeoutMs ?? 0);
    this.#reads = new Http2ReadBudget(limits.maxHeaderBytes ?? 16_384, limits.onOverReadBudget);
    this.#headerBlocks = new UnfinishedHeaderBlocks(limits.headersTimeoutMs ?? 0);
  }

  track(session: Http2Session): void {
    // A session opened while the listener drains (a load balancer has not noticed yet) is served its
    // first request, then told GOAWAY, as an HTTP/1.1 connection is answered with `Connection: close`:
    // GOAWAY before any stream would refuse every request of it.
    if (this.#closing) session.once('stream', () => session.close());
    this.#open.add(session);
    session.once('close', () => this.#open.delete(session));
    this.#headerBlocks.watch(session);
    // node's own socket (session.socket only lets the session end it).
    session.once('connect', (_session: Http2Session, socket: Socket) => {
      this.#connections.watch(session, socket);
      this.#reads.watch(session, socket);
    });
    // One stream's malformed request resets that stream, not the session (node would end the session).
    confineStreamErrors(session);
    compactRequestData(session);
    const { idleTimeoutMs, requestTimeoutMs = 0, maxRequests = 0, headersTimeoutMs = 0 } = this.#limits;
    if (headersTimeoutMs > 0) requireClientSettings(session, headersTimeoutMs);
    if (idleTimeoutMs > 0) closeWhenIdle(session, idleTimeoutMs);
    if (idleTimeoutMs <= 0 && requestTimeoutMs <= 0 && maxRequests <= 0) return;
    let streams = 0;
    const watchDelivery = idleTimeoutMs > 0 ? undeliveredResponseLimit(session, idleTimeoutMs) : undefined;
    session.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
      // The request budget: this stream is served, the client opens the next ones on a new connection.
      if (maxRequests > 0 && ++streams >= maxRequests) session.close();
      // A WebSocket's stream (extended CONNECT) never ends its request: the origin's answer timeout and
      // the WebSocket idle timeout bound it instead.
      const tunnel = headers[':protocol'] !== undefined;
      if (requestTimeoutMs > 0 && !stream.endAfterHeaders && !tunnel)
        limitRequestTime(stream, requestTimeoutMs);
      watchDelivery?.(stream);
    });
  }

  get size(): number {
    return this.#open.size;
  }

  /** Sends GOAWAY on every session (and on any that opens from now on, after its first request). */
  closeGracefully(): void {
    this.#closing = true;
    for (const session of this.#open) session.close();
  }

  /** Resolves once no session is left, or with how many were destroyed at the deadline. */
  async closed(timeoutMs: number): Promise<number> {
    this.closeGracefully();
    const deadline = Date.now() + timeoutMs;
    while (this.#open.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const cut = this.#open.size;
    for (const session of this.#open) session.destroy();
    return cut;
  }
}

/**
 * A session whose client has not sent its preface and SETTINGS in time is destroyed: until then the
 * connection was only a TLS handshake (h2c: the preface's 24 bytes, see acceptH2cOn), and the idle
 * timeout, minutes long, would let a silent or trickling client hold it as long as a served one.
 */
function requireClientSettings(session: Http2Session, timeoutMs: number): void {
  const timer = setTimeout(() => session.destroy(), timeoutMs);
  timer.unref();
  session.once('remoteSettings', () => clearTimeout(timer));
  session.once('close', () => clearTimeout(timer));
}

/**
 * GOAWAY for a session with no frame either way for the idle timeout, unless it carries a WebSocket
 * (an extended CONNECT stream): node's timer counts frames, not open streams, and a WebSocket may be
 * quiet for longer than that. Its own idle timeout (GATEWAY_WEBSOCKET_IDLE_TIMEOUT_SECONDS) closes it, as
 * over HTTP/1.1; the session's idle time counts again from the end of its last WebSocket.
 */
function closeWhenIdle(session: Http2Session, idleTimeoutMs: number): void {
  let openWebSockets = 0;
  clearTimerOnDestroy(session);
  session.setTimeout(idleTimeoutMs);
  session.on('timeout', () => {
    if (openWebSockets === 0) session.close();
  });
  session.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
    if (headers[':protocol'] === undefined) return;
    openWebSockets += 1;
    stream.once('close', () => {
      openWebSockets -= 1;
      if (openWebSockets === 0 && !session.closed && !session.destroyed) session.setTimeout(idleTimeoutMs);
    });
  });
}

/**
 * node clears a session's timer as it destroys it, after marking it destroyed, and `setTimeout` does
 * nothing on a destroyed session: the timer stayed armed and held the session, its socket and what they
 * hold until the idle timeout fired (smithy-lang/smithy-typescript#2258). A client opening and closing
 * sessions as fast as it could held about 6 KB each for 120 s, gigabytes at a few thousand a second.
 * The timer is cleared before node's destroy runs (every way node ends a session calls it).
 */
function clearTimerOnDestroy(session: Http2Session): void {
  const destroy = session.destroy.bind(session);
  session.destroy = (error?: Error, code?: number): void => {
    if (!session.destroyed) session.setTimeout(0);
    destroy(error, code);
  };
}

/**
 * RST_STREAM (CANCEL) for a response the gateway has written whole when none of what is left of it went
 * out for a whole idle timeout: a client that keeps its flow-control window shut would otherwise hold
 * the stream, its bytes and, since GOAWAY waits for open streams, the connection for ever. Not node's
 * stream timer: it counts any frame the session sends (a PING's ACK) as this stream's progress. A
 * stream still waiting for its origin or its request body is left to those deadlines. One check per
 * session and timeout over its open streams, not a timer per stream.
 */
function undeliveredResponseLimit(
  session: Http2Session,
  idleTimeoutMs: number,
): (stream: ServerHttp2Stream) => void {
  /** Each open stream's bytes left at the last check (-1: not written whole then). */
  const open = new Map<ServerHttp2Stream, number>();
  const check = setInterval(() => {
    for (const [stream, leftAtLastCheck] of open) {
      if (!stream.writableEnded || stream.closed) continue;
      const left = stream.bufferSize;
      if (left > 0 && left === leftAtLastCheck) stream.close(constants.NGHTTP2_CANCEL);
      else open.set(stream, left);
    }
  }, idleTimeoutMs);
  check.unref();
  session.once('close', () => clearInterval(check));
  return (stream) => {
    open.set(stream, -1);
    stream.once('close', () => open.delete(stream));
  };
}

/**
 * 408 (when nothing was answered yet) and RST_STREAM for a request not all received in time; the
 * pipeline records the request with the 408 its client got (its status, code and body bytes).
 */
function limitRequestTime(stream: ServerHttp2Stream, timeoutMs: number): void {
  const timer = setTimeout(() => {
    if (stream.destroyed || stream.closed || stream.state.remoteClose === 1) return;
    const reset = () => stream.close(constants.NGHTTP2_NO_ERROR);
    if (stream.headersSent) {
      reset();
      return;
    }
    const res = responseOnStream(stream);
    if (res !== undefined)
      answeredByListener(res, {
        status: 408,
        code: 'request_timeout',
        bodyBytes: REQUEST_TIMEOUT_BODY_BYTES,
      });
    stream.respond({
      ':status': 408,
      'content-type': 'application/json',
      'content-length': REQUEST_TIMEOUT_BODY_BYTES,
    });
    stream.end(REQUEST_TIMEOUT_BODY, reset);
  }, timeoutMs);
  timer.unref();
  stream.once('close', () => clearTimeout(timer));
}
