import {
  type CompiledRateLimits,
  compileRateLimits,
} from '@vantageedge/shared/gateway-policies/compile-rate-limits';
import type { GatewayExchange } from '../pipeline/exchange.js';
import type { RoutePolicy, RouteStage, StageResult } from '../pipeline/stage.js';
import type { RateLimitDecision, RateLimiter } from './rate-limiter.js';
import {
  applyRateLimitHeaders,
  LIMIT_CHECKS_BUSY,
  RATE_LIMIT_UNAVAILABLE,
  RATE_LIMITED,
  writeRateLimitRejection,
} from './rejection.js';

/**
 * The rate-limit stage: compiled onto every route that has a limit (its own or the tenant-wide one)
 * when a snapshot is applied; a route without limits gets no stage.
 */
export function createRateLimitStage(limiter: RateLimiter): RoutePolicy {
  return {
    name: 'rate_limit',
    readsOrigins: false,
    compiledFrom: (tenant) => JSON.stringify(tenant.settings.rate_limit ?? null),
    compileRoute({ tenant, route, routeMetrics }) {
      const compiled = compileRateLimits(tenant, route);
      const limits =
        routeMetrics === undefined ? compiled : { ...compiled, metricsRoute: routeMetrics.label };
      return limits.descriptors.length === 0 ? null : rateLimitStage(limiter, limits);
    },
  };
}

function rateLimitStage(limiter: RateLimiter, limits: CompiledRateLimits): RouteStage {
  return {
    name: 'rate_limit',
    onRequest(exchange) {
      const { identity } = exchange;
      const decision = limiter.checkNow(limits, {
        tenantId: limits.tenantId,
        routeId: limits.routeId,
        userId: identity.principal,
        apiKeyId: identity.apiKeyId,
        clientIp: exchange.clientIp,
      });
      // Fast-mode leases answer synchronously; only a store call (exact mode, a refill) is a promise.
      return decision instanceof Promise
        ? decision.then((settled) => applyDecision(exchange, settled))
        : applyDecision(exchange, decision);
    },
  };
}

function applyDecision(exchange: GatewayExchange, decision: RateLimitDecision): StageResult {
  exchange.rateLimitOutcome = decision.outcome;
  if (decision.outcome !== 'allowed') {
    // The gateway's answer, not the origin's: a fail-closed 503 is the platform's Redis being away, a
    // busy one the tenant's own clients sending more checks at once than its turns take.
    exchange.errorCode =
      decision.outcome === 'limited'
        ? RATE_LIMITED
        : decision.busy === true
          ? LIMIT_CHECKS_BUSY
          : RATE_LIMIT_UNAVAILABLE;
    writeRateLimitRejection(exchange.res, decision);
    return 'handled';
  }
  applyRateLimitHeaders(exchange.res, decision);
  return 'continue';
}
