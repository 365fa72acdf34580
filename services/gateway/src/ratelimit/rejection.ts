import type { ServerResponse } from 'node:http';
import type { RateLimitDecision } from './rate-limiter.js';

/** The error codes of a refusal: in its body, its access-log line and error_responses_total{code}. */
export const RATE_LIMITED = 'rate_limited';
export const RATE_LIMIT_UNAVAILABLE = 'rate_limit_unavailable';
/**
 * The tenant's rate-limit and quota checks in flight and waiting on this replica are at their bound (its
 * clients sent more at once than its turns on Redis take): the tenant's doing, not the platform's.
 */
export const LIMIT_CHECKS_BUSY = 'limit_checks_busy';

const LIMITED_BODY = JSON.stringify({
  error: {
    code: RATE_LIMITED,
    message: 'Too many requests; retry after the number of seconds in Retry-After.',
  },
});
const BUSY_BODY = JSON.stringify({
  error: {
    code: LIMIT_CHECKS_BUSY,
    message:
      "The tenant's rate-limit and quota checks are at their bound on this gateway; retry after the number of seconds in Retry-After.",
  },
});
const UNAVAILABLE_BODY = JSON.stringify({
  error: {
    code: RATE_LIMIT_UNAVAILABLE,
    message: 'Rate limiting is temporarily unavailable for this route.',
  },
});

/** Sets the RateLimit-Policy / RateLimit headers of an admitted request on the response to the client. */
export function applyRateLimitHeaders(res: ServerResponse, decision: RateLimitDecision): void {
  for (const [name, value] of decision.headers) res.setHeader(name, value);
}

/** Answers a refused request: 429 (limited) or 503 (Redis down and fail-closed), both with Retry-After. */
export function writeRateLimitRejection(res: ServerResponse, decision: RateLimitDecision): void {
  if (decision.outcome === 'allowed')
    throw new Error('writeRateLimitRejection called for an allowed request');
  const body =
    decision.outcome === 'limited' ? LIMITED_BODY : decision.busy === true ? BUSY_BODY : UNAVAILABLE_BODY;
  res.statusCode = decision.outcome === 'limited' ? 429 : 503;
  applyRateLimitHeaders(res, decision);
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.setHeader('Cache-Control', 'no-store');
  // The store's circuit lets a trial call through a second after it opened (store-circuit.ts).
  if (decision.outcome === 'store_unavailable') res.setHeader('Retry-After', '1');
  res.end(body);
}
