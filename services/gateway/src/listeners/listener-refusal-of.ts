import type { IncomingMessage } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import type { ListenerRefusal } from '../observability/listener-refusals.js';

/** The refusal of a request whose head was read: its method and target, and its connection's peer. */
export function listenerRefusalOf(
  req: IncomingMessage | Http2ServerRequest,
  status: number,
  code: string,
): ListenerRefusal {
  return { status, code, clientIp: req.socket?.remoteAddress, method: req.method, target: req.url };
}
