import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

const HEADERS_TOO_LARGE_BODY =
  '{"error":{"code":"headers_too_large","message":"the request headers are too large"}}';
const CLIENT_ERROR_431 =
  'HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: application/json\r\nConnection: close\r\n' +
  `Content-Length: ${Buffer.byteLength(HEADERS_TOO_LARGE_BODY)}\r\n\r\n${HEADERS_TOO_LARGE_BODY}`;
export const REQUEST_TIMEOUT_BODY =
  '{"error":{"code":"request_timeout","message":"the request was not received in time"}}';
/** GATEWAY_HEADERS_TIMEOUT_MS / GATEWAY_REQUEST_TIMEOUT_MS ran out before the request was complete. */
const CLIENT_ERROR_408 =
  'HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\nConnection: close\r\n' +
  `Content-Length: ${Buffer.byteLength(REQUEST_TIMEOUT_BODY)}\r\n\r\n${REQUEST_TIMEOUT_BODY}`;
const CLIENT_ERROR_400 = 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n';

export { TIMEOUT_CHECK_INTERVAL_MS } from '@vantageedge/shared/http/idle-keep-alive';

/**
 * The response node is writing on an HTTP/1.1 connection, if any: the answer to the oldest request
 * of the connection not answered yet (node's own `clientError` answer looks at the same field).
 */
function responseInFlight(socket: Duplex): ServerResponse | null | undefined {
  return (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage;
}

/**
 * The `clientError` answer of every HTTP/1.1 listener (plain and over TLS): a request head over
 * GATEWAY_MAX_HEADER_BYTES is 431, a request not received within the headers/request timeout is 408,
 * anything node's parser refuses is 400; each closes the connection.
 *
 * When part of an earlier request's response is out already (a pipelined request after it was
 * malformed, too large or late), the connection is cut without an answer: written now, the error would
 * go out as bytes of that response's body, and the client would take a response ending in them for a
 * whole one.
 */
export function answerClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  if (!socket.writable || responseInFlight(socket)?.headersSent === true) {
    socket.destroy();
    return;
  }
  if (error.code === 'HPE_HEADER_OVERFLOW') socket.end(CLIENT_ERROR_431);
  else if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') socket.end(CLIENT_ERROR_408);
  else socket.end(CLIENT_ERROR_400);
}
