import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { Writable } from 'node:stream';
import type { CompiledRoute, CompiledTenant } from '../config/compiled-tenant.js';
import type { TenantCompileHook } from '../config/gateway-config-store.js';
import type { GatewayExchange, RequestStage, StageResult } from '../pipeline/exchange.js';
import { endToEndRequestHeaders } from '../proxy/hop-by-hop.js';
import { type CompiledCachePolicy, compileCachePolicy } from './compile-cache-policy.js';
import type { CacheFill, CacheLookup, FillBody, ResponseCache } from './response-cache.js';

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
 * Tee for the leader of a MISS whose response is collected: writes the origin response to the client
 * and pushes each chunk into the fill; the fill ends (stores) when the body ends.
 */
function storingTee(
  body: FillBody,
  status: number,
  headers: OutgoingHttpHeaders,
  res: ServerResponse,
  onEnded: () => void,
): Writable {
  res.writeHead(status, headers);
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      body.push(chunk);
      if (res.write(chunk)) callback();
      else res.once('drain', () => callback());
    },
    final(callback) {
      onEnded();
      // Runs after the client has its response: a failure here must not reject into nothing.
      body.end().catch(() => {});
      res.end(() => callback());
    },
  });
}

/** The leader of a MISS: its origin response is collected for the cache while it streams (or not). */
function interceptFill(
  cache: ResponseCache,
  exchange: GatewayExchange,
  fill: CacheFill,
  method: string,
): void {
  let fillBody: FillBody | undefined;
  let ended = false;
  exchange.interceptResponse = (status, headers, response) => {
    const started = cache.beginFill(fill, method, status, incomingHeaders(headers));
    if (started.outcome === 'over_budget') {
      // Streamed through uncached: the replica's fill budget is used up.
      response.setHeader('X-Cache', 'BYPASS');
      exchange.cacheOutcome = 'BYPASS';
    }
    if (started.outcome !== 'collect') {
      ended = true;
      return undefined;
    }
    fillBody = started.body;
    return storingTee(started.body, status, headers, response, () => {
      ended = true;
    });
  };
  // Origin failure or client gone before the body ended: release the buffer and the followers.
  exchange.res.once('close', () => {
    if (ended) return;
    if (fillBody) fillBody.abort();
    else cache.abandon(fill);
  });
}

/** Acts on the lookup: answers HIT/STALE here, prepares the proxy for MISS/BYPASS. */
function respond(
  cache: ResponseCache,
  exchange: GatewayExchange,
  policy: CompiledCachePolicy,
  lookup: CacheLookup,
): StageResult {
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
      if (UNSAFE.has(method))
        res.once('finish', () => {
          cache.invalidatePath(policy, exchange.path).catch(() => {}); // best effort; entries expire
        });
      return 'continue';
    case 'MISS':
      res.setHeader('X-Cache', 'MISS');
      if (lookup.fill) interceptFill(cache, exchange, lookup.fill, method);
      return 'continue';
  }
}

/**
 * The cache stage for GW-CORE's pipeline (after the rate-limit stage). HIT/STALE are answered here,
 * synchronously when the entry is in the L1; a MISS leader's origin response is teed into the cache
 * through exchange.interceptResponse (cache.beginFill decides whether it is collected).
 * Not wired here (needs pipeline support): background revalidation on STALE (the revalidation fill is
 * abandoned, so the next request after the stale window is a MISS) and stale-if-error.
 */
export function createCacheStage(cache: ResponseCache): RequestStage & TenantCompileHook {
  const compiled = new WeakMap<CompiledRoute, CompiledCachePolicy | null>();
  const policyOf = (tenant: CompiledTenant, route: CompiledRoute): CompiledCachePolicy | null => {
    let policy = compiled.get(route);
    if (policy === undefined) {
      policy = compileCachePolicy(tenant.id, route.config);
      compiled.set(route, policy);
    }
    return policy;
  };
  return {
    name: 'cache',
    compile(tenant) {
      for (const route of tenant.routes) policyOf(tenant, route);
    },
    run(exchange) {
      const { tenant, route } = exchange;
      if (!tenant || !route) return 'continue';
      const policy = policyOf(tenant, route);
      if (!policy) return 'continue';
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
      if (lookup instanceof Promise) return lookup.then((answer) => respond(cache, exchange, policy, answer));
      return respond(cache, exchange, policy, lookup);
    },
  };
}
