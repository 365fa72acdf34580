import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { Duplex } from 'node:stream';
import { arrivedOverHttp2 } from '@vantageedge/shared/http/request-version';
import { afterResponsesInFlight } from '@vantageedge/shared/http/responses-in-flight';
import { bodyBytesOf } from '../http/body-bytes.js';
import { listenerErrorAnswer } from '../http/listener-answers.js';
import type { RecordListenerRefusal } from '../observability/listener-refusals.js';
import { writeError } from '../pipeline/errors.js';
import { listenerRefusalOf } from './listener-refusal-of.js';

const CONNECT_MESSAGE = 'the gateway does not tunnel CONNECT requests';
const CONNECT_BODY = `{"error":{"code":"method_not_supported","message":"${CONNECT_MESSAGE}"}}`;
const CONNECT_BODY_BYTES = Buffer.byteLength(CONNECT_BODY);

/**
 * The `connect` listener of every listener: CONNECT is not tunnelled, 405 (as nginx and Kong answer it).
 * A client's choice of method, not a failure of the gateway: no 5xx, which would count against the
 * tenant's error rate and alerting. No `Allow`: a CONNECT names no resource whose methods it could list.
 * Node emits the event with the HTTP/1.1 connection's socket (without a listener it drops the connection
 * unanswered), and on an HTTP/2 server (TLS or h2c) with the stream's response (without one it answers a
 * bare 405): the socket gets the raw refusal, the response the same error in the gateway's shape. An
 * HTTP/2 extended CONNECT (`:protocol`, RFC 8441) never comes here (see connect-requests.ts).
 *
 * A CONNECT pipelined behind requests still being answered (node hands the socket over at once, maybe
 * before their origins answered) is refused once their responses are out whole, as HTTP/1.1 orders
 * answers: written at once, the 405 would be read as the answer to the first of them (another
 * tenant's, on a connection reused across hosts), whose own answer the closed connection never carries.
 */
export function refuseConnect(
  req: IncomingMessage | Http2ServerRequest,
  connection: Duplex | Http2ServerResponse,
  record?: RecordListenerRefusal,
): void {
  const refused = (bytesSent: number | undefined) =>
    record?.(listenerRefusalOf(req, 405, 'method_not_supported', bytesSent));
  // By the connection, not the version: an HTTP/1.1 request line may claim `HTTP/2.0`.
  if (arrivedOverHttp2(req)) {
    writeError(connection as unknown as ServerResponse, 405, 'method_not_supported', CONNECT_MESSAGE);
    refused(bodyBytesOf(connection));
    return;
  }
  const socket = connection as Duplex;
  socket.on('error', () => {});
  afterResponsesInFlight(socket, () => {
    socket.end(listenerErrorAnswer('405 Method Not Allowed', CONNECT_BODY));
    refused(CONNECT_BODY_BYTES);
  });
}
