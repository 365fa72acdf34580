import type { IncomingMessage } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import { socketPeerAddress } from '@vantageedge/shared/net/client-address';
import type { ListenerRefusal } from '../observability/listener-refusals.js';

/** The refusal of a request whose head was read: its method and target, its peer and X-Forwarded-For. */
export function listenerRefusalOf(
  req: IncomingMessage | Http2ServerRequest,
  status: number,
  code: string,
): ListenerRefusal {
  return {
    status,
    code,
    clientIp: socketPeerAddress(req.socket),
    forwardedFor: req.headers['x-forwarded-for'],
    method: req.method,
    target: req.url,
  };
}
