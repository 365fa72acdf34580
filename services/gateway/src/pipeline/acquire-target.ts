import type { CompiledOrigin } from '../config/compiled-tenant.js';
import type { UpstreamLease } from '../upstream/types.js';
import type { GatewayExchange } from './exchange.js';

/**
 * A target of `origin`, else (first attempt of a split route) of the split's other origins in turn;
 * the origin fallen back to becomes exchange.origin, which the attempt and its retries then use.
 * A WebSocket upgrade takes its target the same way.
 */
export function acquireTarget(
  exchange: GatewayExchange,
  origin: CompiledOrigin,
  avoid: readonly string[] | undefined,
): UpstreamLease | undefined {
  const context = {
    clientIp: exchange.clientIp,
    path: exchange.path,
    headers: exchange.req.headers,
    peerTrusted: exchange.peerTrusted,
    routeHeaders: exchange.routeRequestHeaders,
  };
  const lease = origin.upstreams.acquire(context, avoid === undefined ? undefined : { avoid });
  if (lease !== undefined || avoid !== undefined || exchange.fallbackOrigins === undefined) return lease;
  for (const fallback of exchange.fallbackOrigins) {
    const other = fallback.upstreams.acquire(context);
    if (other !== undefined) {
      exchange.origin = fallback;
      return other;
    }
  }
  return undefined;
}
