import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import {
  type CompiledCachePolicy,
  compileCachePolicy,
} from '@vantageedge/shared/gateway-policies/compile-cache-policy';
import type { GatewayExchange } from '../pipeline/exchange.js';
import type { BodyTap, ResponseHead, RoutePolicy, RouteStage, StageResult } from '../pipeline/stage.js';
import { endToEndRequestHeaders } from '../proxy/hop-by-hop.js';
import type { CacheFill, CacheLookup, ResponseCache } from './response-cache.js';

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

function incomingHeaders(headers: OutgoingHttpHeaders): IncomingHttpHeaders {
  const converted: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    converted[name.toLowerCase()] = Array.isArray(value) ? value.map(String) : String(value);
  }
  return converted as IncomingHttpHeaders;
}

/**
 * The response cache as a route stage, compiled onto every route with an enabled cache policy (after
 * the rate-limit stage); a route without one gets no stage.
 * - Request hook: HIT/STALE are answered here, synchronously when the entry is in the L1; a MISS or
 *   BYPASS goes on to the origin.
 * - Response hook: the MISS leader's origin response is offered to the cache (cache.beginFill decides
 *   whether it is collected) and its body tapped while it streams; complete, it is stored.
 * - End hook: a fill never completed (origin failure, client gone) is released so coalesced followers
 *   go on; an unsafe method that went through drops the path's cached variants.
 * Not wired here (needs pipeline support): background revalidation on STALE (the revalidation fill is
 * abandoned, so the next request after the stale window is a MISS) and stale-if-error.
 */
export function createCacheStage(cache: ResponseCache): RoutePolicy {
  return {
    name: 'cache',
    compileRoute({ tenant, route }) {
      const policy = compileCachePolicy(tenant.id, route);
      return policy === null ? null : cacheStage(cache, policy);
    },
    tenantApplied(tenant) {
      // Lookups bypass the cache until the tenant's purge generations are loaded.
      cache.prepareTenant(tenant.id).catch(() => {});
    },
  };
}

function cacheStage(cache: ResponseCache, policy: CompiledCachePolicy): RouteStage {
  return {
    name: 'cache',
    onRequest(exchange) {
      const { req, identity } = exchange;
      const query = exchange.query.startsWith('?') ? exchange.query.slice(1) : exchange.query;
      const lookup = cache.lookup(
        policy,
        // Keyed on the headers the origin will see: none the client named in Connection.
        {
          method: req.method ?? 'GET',
          path: exchange.path,
          query,
          headers: endToEndRequestHeaders(req.headers),
        },
        { userId: identity.userId ?? identity.serviceId, apiKeyId: identity.apiKeyId },
      );
      if (lookup instanceof Promise) return lookup.then((answer) => respond(cache, exchange, answer));
      return respond(cache, exchange, lookup);
    },
    onResponse(exchange, head) {
      const fill = exchange.cacheFill;
      return fill === undefined ? undefined : fillingTap(cache, exchange, fill, head);
    },
    onEnd(exchange) {
      if (exchange.cacheFillBody !== undefined) {
        // The body never completed (origin failure, client gone): release its buffer and the followers.
        exchange.cacheFillBody.abort();
        exchange.cacheFillBody = undefined;
      }
      if (exchange.cacheFill !== undefined) {
        // The origin failed or the client left before the body was complete: release the followers.
        cache.abandon(exchange.cacheFill);
        exchange.cacheFill = undefined;
      }
      const method = exchange.req.method ?? 'GET';
      if (exchange.cacheOutcome === 'BYPASS' && UNSAFE.has(method) && exchange.res.writableFinished) {
        cache.invalidatePath(policy, exchange.path).catch(() => {}); // best effort; entries expire
      }
    },
  };
}

/** Acts on the lookup: answers HIT/STALE here, prepares the proxy for MISS/BYPASS. */
function respond(cache: ResponseCache, exchange: GatewayExchange, lookup: CacheLookup): StageResult {
  const { res } = exchange;
  const method = exchange.req.method ?? 'GET';
  exchange.cacheOutcome = lookup.outcome;
  switch (lookup.outcome) {
    case 'HIT':
      cache.writeEntry(res, lookup.entry, 'HIT', method);
      return 'handled';
    case 'STALE':
      if (lookup.revalidation) cache.abandon(lookup.revalidation);
      cache.writeEntry(res, lookup.entry, 'STALE', method);
      return 'handled';
    case 'BYPASS':
      res.setHeader('X-Cache', 'BYPASS');
      return 'continue';
    case 'MISS':
      res.setHeader('X-Cache', 'MISS');
      exchange.cacheFill = lookup.fill ?? undefined;
      return 'continue';
  }
}

/**
 * The MISS leader's origin response: collected for the cache while it streams (or not, when the rules
 * refuse it or the replica's fill budget is used up), stored when the body is complete.
 */
function fillingTap(
  cache: ResponseCache,
  exchange: GatewayExchange,
  fill: CacheFill,
  head: ResponseHead,
): BodyTap | undefined {
  const method = exchange.req.method ?? 'GET';
  const started = cache.beginFill(fill, method, head.statusCode, incomingHeaders(head.headers));
  // From here beginFill owns the fill: it released it already, or the body below carries it.
  exchange.cacheFill = undefined;
  if (started.outcome !== 'collect') {
    if (started.outcome === 'over_budget') {
      // Streamed through uncached: the replica's fill budget is used up.
      exchange.res.setHeader('X-Cache', 'BYPASS');
      exchange.cacheOutcome = 'BYPASS';
    }
    return undefined;
  }
  const body = started.body;
  exchange.cacheFillBody = body;
  return {
    chunk(data) {
      body.push(data);
    },
    end() {
      exchange.cacheFillBody = undefined;
      // Runs as the client gets its response: a failure here must not reject into nothing.
      body.end().catch(() => {});
    },
  };
}
