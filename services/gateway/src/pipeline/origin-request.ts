import type { OutgoingHttpHeaders } from 'node:http';
import { preservedHost } from '@vantageedge/shared/routing/host-lookup';
import { strippedPath } from '@vantageedge/shared/routing/strip-prefix';
import { requestAuthority } from '../http/request-authority.js';
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
 * The Host the origin gets on `lease`'s target: the target's own host[:port], or with the route's
 * preserve_host the host the tenant was resolved from. TLS to the target keeps the target's name (or
 * its tls.server_name) whatever this is: guarded-connector.ts.
 */
function originHost(exchange: GatewayExchange, lease: UpstreamLease): string {
  if (!exchange.route!.preserveHost) return lease.target.url.host;
  // A request reaches a route only through a host that resolved to its tenant: one preservedHost reads.
  return preservedHost(requestAuthority(exchange.req.headers) ?? '') ?? lease.target.url.host;
}

/**
 * The request headers the origin gets for this exchange on `lease`'s target: the client's end-to-end
 * headers, the gateway's forwarding and identity headers (forwarded-headers.ts), its Host (originHost).
 */
export function originRequestHeaders(
  exchange: GatewayExchange,
  lease: UpstreamLease,
  stripped: boolean,
): OutgoingHttpHeaders {
  const { req } = exchange;
  return upstreamRequestHeaders(req.headers, {
    upstreamHost: originHost(exchange, lease),
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
    httpVersion: req.httpVersion,
    via: exchange.via,
  });
}
