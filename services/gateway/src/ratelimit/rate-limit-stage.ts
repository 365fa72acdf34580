import type { CompiledRoute, CompiledTenant } from '../config/compiled-tenant.js';
import type { TenantCompileHook } from '../config/gateway-config-store.js';
import type { GatewayExchange, RequestStage, StageResult } from '../pipeline/exchange.js';
import { type CompiledRateLimits, compileRateLimits } from './compile-rate-limits.js';
import type { RateLimiter } from './rate-limiter.js';
import { applyRateLimitHeaders, writeRateLimitRejection } from './rejection.js';

const NONE: CompiledRateLimits = { tenantId: '', routeId: '', descriptors: [], policyHeader: null };

/**
 * The rate-limit stage of the gateway pipeline. Register it as a TenantCompileHook of the config store
 * (limits compiled when a snapshot is applied) and as the first RequestStage. A route first seen
 * without the hook is compiled once on its first request (kept per CompiledRoute object).
 */
export function createRateLimitStage(limiter: RateLimiter): RequestStage & TenantCompileHook {
  const compiled = new WeakMap<CompiledRoute, CompiledRateLimits>();
  const limitsOf = (tenant: CompiledTenant, route: CompiledRoute): CompiledRateLimits => {
    let limits = compiled.get(route);
    if (!limits) {
      const built = compileRateLimits(tenant.snapshot.tenant, route.config);
      limits = built.descriptors.length > 0 ? built : NONE;
      compiled.set(route, limits);
    }
    return limits;
  };
  return {
    name: 'rate_limit',
    compile(tenant) {
      for (const route of tenant.routes) limitsOf(tenant, route);
    },
    run(exchange: GatewayExchange): StageResult | Promise<StageResult> {
      const { tenant, route } = exchange;
      if (!tenant || !route) return 'continue';
      const limits = limitsOf(tenant, route);
      if (limits === NONE) return 'continue';
      const { identity } = exchange;
      return limiter
        .check(limits, {
          tenantId: limits.tenantId,
          routeId: limits.routeId,
          userId: identity.userId ?? identity.serviceId,
          apiKeyId: identity.apiKeyId,
          clientIp: exchange.clientIp,
        })
        .then((decision) => {
          exchange.rateLimitOutcome = decision.outcome;
          if (decision.outcome !== 'allowed') {
            writeRateLimitRejection(exchange.res, decision);
            return 'handled';
          }
          applyRateLimitHeaders(exchange.res, decision);
          return 'continue';
        });
    },
  };
}
