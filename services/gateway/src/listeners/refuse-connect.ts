import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { Duplex } from 'node:stream';
import { arrivedOverHttp2 } from '../http/request-version.js';
import { writeError } from '../pipeline/errors.js';

const CONNECT_MESSAGE = 'the gateway does not tunnel CONNECT requests';
const CONNECT_BODY = `{"error":{"code":"method_not_supported","message":"${CONNECT_MESSAGE}"}}`;
const CONNECT_NOT_SUPPORTED =
  'HTTP/1.1 501 Not Implemented\r\nContent-Type: application/json\r\nConnection: close\r\n' +
  `Content-Length: ${Buffer.byteLength(CONNECT_BODY)}\r\n\r\n${CONNECT_BODY}`;

/**
 * The `connect` listener of every listener: CONNECT is not tunnelled, 501. Node emits the event with
 * the HTTP/1.1 connection's socket (without a listener it drops the connection unanswered), and on an
 * HTTP/2 server (TLS or h2c) with the stream's response (without one it answers a bare 405): the
 * socket gets the raw refusal, the response the same error in the gateway's shape.
 */
export function refuseConnect(
  req: IncomingMessage | Http2ServerRequest,
  connection: Duplex | Http2ServerResponse,
): void {
  // By the connection, not the version: an HTTP/1.1 request line may claim `HTTP/2.0`.
  if (arrivedOverHttp2(req)) {
    writeError(connection as unknown as ServerResponse, 501, 'method_not_supported', CONNECT_MESSAGE);
    return;
  }
  const socket = connection as Duplex;
  socket.on('error', () => {});
  socket.end(CONNECT_NOT_SUPPORTED);
}
