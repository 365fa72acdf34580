import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { internalListenerHeader } from '@vantageedge/shared/http/internal-listener';

const [MARK_NAME, MARK_VALUE] = internalListenerHeader('control-plane');

function answer(status: string, code: string, message: string): string {
  const body = JSON.stringify({ error: { code, message, details: [] } });
  return (
    `HTTP/1.1 ${status}\r\nContent-Type: application/json; charset=utf-8\r\n${MARK_NAME}: ${MARK_VALUE}\r\n` +
    `X-Content-Type-Options: nosniff\r\nConnection: close\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  );
}

const HEADERS_TOO_LARGE = answer(
  '431 Request Header Fields Too Large',
  'headers_too_large',
  'the request headers are too large',
);
const REQUEST_TIMEOUT = answer(
  '408 Request Timeout',
  'request_timeout',
  'the request was not received in time',
);
const MALFORMED = answer('400 Bad Request', 'malformed_request', 'the request is not valid HTTP/1.1');

/**
 * The listener's 'clientError': what node's parser refused (a head over the header limit, a request not
 * received in time, anything unparseable) is answered as node would, but in the admin API's error shape
 * and marked as its own answer (a gateway never relays it). As node does, only while nothing has been
 * written on the connection (else an answer would land inside an earlier response), then it is closed.
 */
export function answerClientError(error: NodeJS.ErrnoException, stream: Duplex): void {
  const socket = stream as Socket;
  // A connection the client reset is gone: nothing to answer (node's documented handling).
  if (error.code === 'ECONNRESET' || !socket.writable || socket.bytesWritten > 0) {
    socket.destroy();
    return;
  }
  if (error.code === 'HPE_HEADER_OVERFLOW') socket.end(HEADERS_TOO_LARGE);
  else if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') socket.end(REQUEST_TIMEOUT);
  else socket.end(MALFORMED);
}
