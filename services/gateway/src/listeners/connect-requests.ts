import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { Duplex } from 'node:stream';
import { singleHeader } from '@vantageedge/shared/http/header-values';
import { arrivedOverHttp2 } from '@vantageedge/shared/http/request-version';
import { bodyBytesOf } from '../http/body-bytes.js';
import type { RecordListenerRefusal } from '../observability/listener-refusals.js';
import { writeError } from '../pipeline/errors.js';
import { listenerRefusalOf } from './listener-refusal-of.js';
import { refuseConnect } from './refuse-connect.js';

/** Node's `connect` listener: an HTTP/1.1 connection's socket, or an HTTP/2 stream's response. */
export type ConnectListener = (
  req: IncomingMessage | Http2ServerRequest,
  connection: Duplex | Http2ServerResponse,
) => void;

/** Where a WebSocket opened with an HTTP/2 extended CONNECT goes (the WebSocket proxy). */
export type ExtendedConnectHandler = (req: Http2ServerRequest, res: Http2ServerResponse) => void;

/**
 * The `connect` listener of every listener: an HTTP/2 extended CONNECT (RFC 8441) for `websocket` is a
 * WebSocket, proxied as an HTTP/1.1 upgrade is; a CONNECT for another protocol is refused 400 naming
 * `:protocol`; a plain CONNECT (a tunnel, over either version) stays refused 405. Only listeners that
 * announce SETTINGS_ENABLE_CONNECT_PROTOCOL see a `:protocol` at all: nghttp2 resets it elsewhere.
 */
export function answerConnect(
  webSockets: ExtendedConnectHandler,
  record?: RecordListenerRefusal,
): ConnectListener {
  return (req, connection) => {
    const protocol = arrivedOverHttp2(req)
      ? singleHeader((req as Http2ServerRequest).headers[':protocol'])
      : undefined;
    if (protocol === undefined) {
      refuseConnect(req, connection, record);
      return;
    }
    const res = connection as Http2ServerResponse;
    if (protocol.toLowerCase() !== 'websocket') {
      // The client's side of the stream is a tunnel it would go on sending on: reset once answered.
      res.once('finish', () => res.stream.close());
      writeError(
        res as unknown as ServerResponse,
        400,
        'unsupported_protocol',
        'the gateway proxies extended CONNECT only for :protocol websocket',
      );
      record?.(listenerRefusalOf(req, 400, 'unsupported_protocol', bodyBytesOf(res)));
      return;
    }
    webSockets(req as Http2ServerRequest, res);
  };
}
