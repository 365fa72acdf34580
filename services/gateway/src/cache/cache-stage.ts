import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { GatewayExchange } from '../pipeline/exchange.js';
import type { BodyTap, ResponseHead, RoutePolicy, RouteStage, StageResult } from '../pipeline/stage.js';
import { type CompiledCachePolicy, compileCachePolicy } from './compile-cache-policy.js';
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
 * the rate-limit stage). Request hook: HIT/STALE are answered here; a MISS goes on to the origin.
 * Response hook: the MISS leader's origin body is tapped and stored once complete. End hook: a fill
 * that was never stored (origin failure, client gone) is abandoned so coalesced followers go on; an
 * unsafe method that went through drops the path's cached variants.
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
  const applyLookup = (exchange: GatewayExchange, lookup: CacheLookup): StageResult => {
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
  };
  return {
    name: 'cache',
    onRequest(exchange) {
      const { req, identity } = exchange;
      const query = exchange.query.startsWith('?') ? exchange.query.slice(1) : exchange.query;
      return cache
        .lookup(
          policy,
          { method: req.method ?? 'GET', path: exchange.path, query, headers: req.headers },
          { userId: identity.userId ?? identity.serviceId, apiKeyId: identity.apiKeyId },
        )
        .then((lookup) => applyLookup(exchange, lookup));
    },
    onResponse(exchange, head) {
      const fill = exchange.cacheFill;
      return fill === undefined ? undefined : storingTap(cache, exchange, fill, head);
    },
    onEnd(exchange) {
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

/** Collects the MISS leader's body (up to the policy's max) and stores it once the body is complete. */
function storingTap(
  cache: ResponseCache,
  exchange: GatewayExchange,
  fill: CacheFill,
  head: ResponseHead,
): BodyTap {
  const chunks: Buffer[] = [];
  let size = 0;
  let tooLarge = false;
  const method = exchange.req.method ?? 'GET';
  return {
    chunk(data) {
      if (tooLarge) return;
      size += data.length;
      if (size > fill.policy.maxBodyBytes) {
        tooLarge = true;
        chunks.length = 0;
      } else chunks.push(data);
    },
    end() {
      exchange.cacheFill = undefined;
      // Runs as the client gets its response: a failure here must release the coalesced followers
      // (abandon), never reject into nothing.
      cache
        .store(fill, method, {
          status: head.statusCode,
          headers: incomingHeaders(head.headers),
          body: tooLarge ? null : Buffer.concat(chunks),
        })
        .catch(() => cache.abandon(fill));
    },
  };
}
