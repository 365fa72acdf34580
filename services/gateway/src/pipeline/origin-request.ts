import type { OutgoingHttpHeaders } from 'node:http';
import { strippedPath } from '@vantageedge/shared/routing/strip-prefix';
import { connectionProto, upstreamRequestHeaders } from '../proxy/forwarded-headers.js';
import type { UpstreamLease } from '../upstream/types.js';
import type { GatewayExchange } from './exchange.js';

/**
 * Path of the exchange's request as its origin receives it: the route's rewrite_path result, else the
 * path with strip_prefix applied.
 */
export function originPath(exchange: GatewayExchange): { path: string; stripped: boolean } {
  if (exchange.forwardPath !== undefined) return { path: exchange.forwardPath, stripped: false };
  const path = strippedPath(exchange.path, exchange.route!.stripPrefix);
  return { path, stripped: path !== exchange.path };
}

/**
 * The request headers the origin gets for this exchange on `lease`'s target: the client's end-to-end
 * headers, the gateway's forwarding and identity headers (forwarded-headers.ts).
 */
export function originRequestHeaders(
  exchange: GatewayExchange,
  lease: UpstreamLease,
  stripped: boolean,
): OutgoingHttpHeaders {
  const { req } = exchange;
  return upstreamRequestHeaders(req.headers, {
    upstreamHost: lease.target.url.host,
    clientIp: exchange.clientIp,
    peerIp: exchange.peerIp,
    peerTrusted: exchange.peerTrusted,
    proto: connectionProto(req),
    localPort: req.socket.localPort,
    strippedPrefix: stripped ? exchange.route!.stripPrefix : null,
    requestId: exchange.requestId,
    tenantId: exchange.tenant!.id,
    routeId: exchange.route!.config.id,
    identity: exchange.identity,
    routeHeaders: exchange.routeRequestHeaders,
  });
}
