import type { IncomingMessage } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import { socketPeerAddress } from '@vantageedge/shared/net/client-address';
import { bodyBytesOf } from '../http/body-bytes.js';
import type { ListenerRefusal } from '../observability/listener-refusals.js';

/**
 * The refusal of a request whose head was read: its method, target and User-Agent, its peer and
 * X-Forwarded-For, its body bytes read; `bytesSent`: those of the answer's body.
 */
export function listenerRefusalOf(
  req: IncomingMessage | Http2ServerRequest,
  status: number,
  code: string,
  bytesSent: number | undefined,
): ListenerRefusal {
  return {
    status,
    code,
    clientIp: socketPeerAddress(req.socket),
    forwardedFor: req.headers['x-forwarded-for'],
    method: req.method,
    target: req.url,
    userAgent: req.headers['user-agent'],
    bytesReceived: bodyBytesOf(req),
    bytesSent,
  };
}
