import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { handleNeverRequest } from '@vantageedge/shared/http/last-on-connection';
import { destroyAfterLingering } from '@vantageedge/shared/http/lingering-close';
import { responseInFlight } from '@vantageedge/shared/http/responses-in-flight';
import { socketPeerAddress } from '@vantageedge/shared/net/client-address';
import type { ListenerRefusal, RecordListenerRefusal } from '../observability/listener-refusals.js';
import { answeredByListener, listenerErrorAnswer } from './listener-answers.js';

const HEADERS_TOO_LARGE_BODY =
  '{"error":{"code":"headers_too_large","message":"the request headers are too large"}}';
const HEADERS_TOO_LARGE_BODY_BYTES = Buffer.byteLength(HEADERS_TOO_LARGE_BODY);
export const REQUEST_TIMEOUT_BODY =
  '{"error":{"code":"request_timeout","message":"the request was not received in time"}}';
/** GATEWAY_HEADERS_TIMEOUT_MS / GATEWAY_REQUEST_TIMEOUT_MS ran out before the request was complete. */
export const REQUEST_TIMEOUT_BODY_BYTES = Buffer.byteLength(REQUEST_TIMEOUT_BODY);

/**
 * The 400 for a request node's parser refused, in the gateway's error shape; the message names the
 * parser's reason (`HPE_UNEXPECTED_CONTENT_LENGTH` → `unexpected_content_length`), a fixed set of words.
 */
function malformedRequestAnswer(error: NodeJS.ErrnoException): { answer: string; bodyBytes: number } {
  const reason = /^HPE_[A-Z_]+$/.test(error.code ?? '') ? error.code!.slice(4).toLowerCase() : 'unreadable';
  const body = `{"error":{"code":"malformed_request","message":"the request is not valid HTTP/1.1 (${reason})"}}`;
  return { answer: listenerErrorAnswer('400 Bad Request', body), bodyBytes: Buffer.byteLength(body) };
}

export { TIMEOUT_CHECK_INTERVAL_MS } from '@vantageedge/shared/http/idle-keep-alive';

/**
 * The `clientError` answer of every HTTP/1.1 listener (plain and over TLS): a request head over
 * GATEWAY_MAX_HEADER_BYTES is 431, a request not received within the headers/request timeout is 408,
 * anything node's parser refuses is 400 malformed_request; each closes the connection.
 *
 * A client reads answers in the order of its requests, so while an earlier response is on the
 * connection the error cannot be answered:
 * - a response the gateway has given whole (held until the end of the event loop's turn: often the
 *   gateway's own refusal of the very request whose body node then fails to read) goes out, and then
 *   the connection closes;
 * - any other is cut with the connection, no error written: written now, the error would go out as
 *   bytes of that response's body, or, before its head, as the answer to the earlier request (which the
 *   origin may still be acting on);
 * - unless the error is that very request's own (its body malformed or late) and its head is not out:
 *   then the error is its answer;
 * - or unless the error is that of a request pipelined behind requests received whole (its head too
 *   large, its body malformed or late): their answers go out first, maybe other tenants' on a connection
 *   reused across hosts (see answerAfterReceivedRequests).
 *
 * Each answer written is recorded once: with `record`, or, answering a request the pipeline has, by the
 * pipeline under its tenant (listener-answers.ts). A cut connection answers nothing.
 */
export function answerClientError(
  error: NodeJS.ErrnoException,
  socket: Duplex,
  record?: RecordListenerRefusal,
): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const inFlight = responseInFlight(socket);
  if (inFlight) {
    // Bytes after a request that said `Connection: close` are ignored (RFC 9112 §9.6): node closes the
    // connection once that request's response is out.
    if (error.code === 'HPE_CLOSED_CONNECTION') return;
    if (inFlight.req.complete) {
      const { answer, status, code, bodyBytes } = clientErrorAnswer(error);
      answerAfterReceivedRequests(socket, answer, (late) =>
        recordAnswer(socket, late, status, code, bodyBytes, record),
      );
      return;
    }
    if (inFlight.headersSent) {
      closeAfterWholeResponses(socket);
      return;
    }
  }
  const { answer, status, code, bodyBytes } = clientErrorAnswer(error);
  socket.end(answer);
  recordAnswer(socket, inFlight, status, code, bodyBytes, record);
}

interface ClientErrorAnswer {
  readonly answer: string;
  readonly status: number;
  readonly code: string;
  readonly bodyBytes: number;
}

function clientErrorAnswer(error: NodeJS.ErrnoException): ClientErrorAnswer {
  if (error.code === 'HPE_HEADER_OVERFLOW') {
    return {
      answer: listenerErrorAnswer('431 Request Header Fields Too Large', HEADERS_TOO_LARGE_BODY),
      status: 431,
      code: 'headers_too_large',
      bodyBytes: HEADERS_TOO_LARGE_BODY_BYTES,
    };
  }
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    return {
      answer: listenerErrorAnswer('408 Request Timeout', REQUEST_TIMEOUT_BODY),
      status: 408,
      code: 'request_timeout',
      bodyBytes: REQUEST_TIMEOUT_BODY_BYTES,
    };
  }
  return { ...malformedRequestAnswer(error), status: 400, code: 'malformed_request' };
}

/**
 * An answer the listener wrote, recorded once: by the pipeline, under the tenant, when it took the request
 * answered (`response`, its body malformed or late), else as a listener refusal.
 */
function recordAnswer(
  socket: Duplex,
  response: ServerResponse | null | undefined,
  status: number,
  code: string,
  bytesSent: number,
  record: RecordListenerRefusal | undefined,
): void {
  if (response && answeredByListener(response, { status, code, bodyBytes: bytesSent })) return;
  record?.(refusal(socket, status, code, bytesSent));
}

/**
 * The refusal of a request whose head was not read (or not all of it): its connection's peer, and the
 * body bytes of the answer (no request body was read for it).
 */
function refusal(socket: Duplex, status: number, code: string, bytesSent: number): ListenerRefusal {
  return { status, code, clientIp: socketPeerAddress(socket as Partial<Socket>), bytesSent };
}

/** Lets the responses already given whole go out, in order, then closes; cuts at the first one that is not. */
function closeAfterWholeResponses(socket: Duplex): void {
  if (closing.has(socket)) return; // node reports each later chunk's error again
  closing.add(socket);
  const next = (): void => {
    const response = responseInFlight(socket);
    if (!response) socket.end();
    else if (!response.writableEnded || !socket.writable) socket.destroy();
    else response.once('finish', next); // after node's own listener, which hands over to the next response
  };
  next();
}

/**
 * A request pipelined behind requests received whole failed: its head was too large, its body malformed,
 * or the request timeout ran out for it (its body is left unread until its turn, one-request-at-a-time.ts,
 * yet node's clock runs from its head). The requests ahead, maybe other tenants' whose origins take their
 * time, did nothing wrong: their answers go out first, however long they take; then the failed request,
 * never handled, is answered `answer` and the connection closes. The rest of its body is never read, so
 * the client's end of the connection would go unseen: the connection is destroyed after
 * LINGERING_CLOSE_MS, time for the client to read the answer.
 */
function answerAfterReceivedRequests(
  socket: Duplex,
  answer: string,
  answered: (late: ServerResponse | null | undefined) => void,
): void {
  if (closing.has(socket)) return;
  closing.add(socket);
  // The one request node has not read whole (none when its head failed): answered here, never handled,
  // even if the rest of it comes meanwhile. Those received whole before it are handled in turn; node
  // reads no request after it before it is answered.
  const failed = unfinishedRequestOf(socket);
  if (failed !== undefined) handleNeverRequest(failed);
  // Each `finish` listener runs after node's own, which hands the connection to the next response.
  const next = (): void => {
    const response = responseInFlight(socket);
    if (!socket.writable) socket.destroy();
    else if (response && response.req !== failed && response.req.complete) response.once('finish', next);
    else {
      socket.end(answer);
      answered(response);
      destroyAfterLingering(socket);
    }
  };
  next();
}

/**
 * The request node's parser of this HTTP/1.1 connection is reading, if its head was read and its body
 * not all of it (the parser keeps the last request it read whole until the next head).
 */
function unfinishedRequestOf(socket: Duplex): IncomingMessage | undefined {
  const incoming = (socket as Duplex & { parser?: { incoming?: IncomingMessage | null } | null }).parser
    ?.incoming;
  return incoming && !incoming.complete ? incoming : undefined;
}

/** Connections closing after their whole responses, or after the requests received whole. */
const closing = new WeakSet<Duplex>();
