import type { Duplex } from 'node:stream';
import type { GatewayExchange } from '../pipeline/exchange.js';
import type { UpgradeCounts } from './upgrade-counts.js';

/**
 * The route stage that refuses an upgrade first, as any request: its IP rules, before anything that
 * depends on the route (a refused address learns nothing of it).
 */
export const ADDRESS_STAGES: ReadonlySet<string> = new Set(['ip_rules']);
/** Route stages that may refuse an upgrade before authentication, as they do any request. */
export const BEFORE_AUTH_STAGES: ReadonlySet<string> = new Set(['request_limits']);
/**
 * The route stages that run at connect after authentication: a route in maintenance mode or one that
 * redirects answers the upgrade itself; the request transforms shape what the origin receives (path,
 * headers, query), as for any request, so a client cannot switch them off by asking for an upgrade; the
 * rate limit and the quota count it (a connection is a request); the traffic split chooses its origin
 * (weights, stickiness, overrides), as for any request; not the cache (a cached 101 makes no sense).
 */
export const CONNECT_STAGES: ReadonlySet<string> = new Set([
  'fixed_response',
  'redirect',
  'request_transform',
  'rate_limit',
  'quota',
  'traffic_split',
]);

/** Runs the route's request stages named in `names`, in order; true when one answered the upgrade. */
export async function answeredByRequestStage(
  exchange: GatewayExchange,
  socket: Duplex,
  names: ReadonlySet<string>,
  counts: UpgradeCounts,
): Promise<boolean> {
  for (const stage of exchange.route?.stages.request ?? []) {
    if (!names.has(stage.name)) continue;
    if ((await stage.onRequest!(exchange)) === 'handled') {
      answeredByStage(exchange, socket, counts);
      return true;
    }
  }
  return false;
}

/** The route's upgrade checks (a CORS route's Origin); true when one refused the upgrade. */
export function refusedByUpgradeStage(
  exchange: GatewayExchange,
  socket: Duplex,
  counts: UpgradeCounts,
): boolean {
  for (const stage of exchange.route?.stages.upgrade ?? []) {
    if (stage.onUpgrade!(exchange) === 'handled') {
      answeredByStage(exchange, socket, counts);
      return true;
    }
  }
  return false;
}

function answeredByStage(exchange: GatewayExchange, socket: Duplex, counts: UpgradeCounts): void {
  counts.count(exchange.tenant, exchange.res.statusCode, exchange.errorCode);
  // The answer may already be out (a stage that answers synchronously, before any await).
  if (exchange.res.writableFinished) socket.destroy();
  else exchange.res.once('finish', () => socket.destroy());
}
