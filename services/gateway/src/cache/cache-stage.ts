import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { Writable } from 'node:stream';
import type { CompiledRoute, CompiledTenant } from '../config/compiled-tenant.js';
import type { TenantCompileHook } from '../config/gateway-config-store.js';
import type { GatewayExchange, RequestStage, StageResult } from '../pipeline/exchange.js';
import { type CompiledCachePolicy, compileCachePolicy } from './compile-cache-policy.js';
import type { CacheFill, ResponseCache } from './response-cache.js';

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
 * Tee for the leader of a MISS: writes the origin response to the client and collects the body (up to
 * the policy's max) for cache.store when it ends.
 */
function storingTee(
  cache: ResponseCache,
  fill: CacheFill,
  method: string,
  status: number,
  headers: OutgoingHttpHeaders,
  res: ServerResponse,
  onStored: () => void,
): Writable {
  const chunks: Buffer[] = [];
  let size = 0;
  let tooLarge = false;
  res.writeHead(status, headers);
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      if (!tooLarge) {
        size += chunk.length;
        if (size > fill.policy.maxBodyBytes) {
          tooLarge = true;
          chunks.length = 0;
        } else chunks.push(chunk);
      }
      if (res.write(chunk)) callback();
      else res.once('drain', () => callback());
    },
    final(callback) {
      onStored();
      // Runs after the client has its response: a failure here must release the coalesced
      // followers (abandon), never reject into nothing.
      cache
        .store(fill, method, {
          status,
          headers: incomingHeaders(headers),
          body: tooLarge ? null : Buffer.concat(chunks),
        })
        .catch(() => cache.abandon(fill));
      res.end(() => callback());
    },
  });
}

/**
 * The cache stage for GW-CORE's pipeline (after the rate-limit stage). HIT/STALE are answered here;
 * a MISS leader's origin response is teed into the cache through exchange.interceptResponse.
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
  const run = async (exchange: GatewayExchange, policy: CompiledCachePolicy): Promise<StageResult> => {
    const { req, res, identity } = exchange;
    const method = req.method ?? 'GET';
    const query = exchange.query.startsWith('?') ? exchange.query.slice(1) : exchange.query;
    const lookup = await cache.lookup(
      policy,
      { method, path: exchange.path, query, headers: req.headers },
      { userId: identity.userId ?? identity.serviceId, apiKeyId: identity.apiKeyId },
    );
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
      case 'MISS': {
        res.setHeader('X-Cache', 'MISS');
        const { fill } = lookup;
        if (fill) {
          let stored = false;
          exchange.interceptResponse = (status, headers, response) =>
            storingTee(cache, fill, method, status, headers, response, () => {
              stored = true;
            });
          // Origin failure or client gone before the body ended: release the coalesced followers.
          res.once('close', () => {
            if (!stored) cache.abandon(fill);
          });
        }
        return 'continue';
      }
    }
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
      return run(exchange, policy);
    },
  };
}
