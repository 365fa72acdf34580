import type { Readable } from 'node:stream';
import type { FillBudget } from '../cache/fill-budget.js';
import type { GatewayExchange } from '../pipeline/exchange.js';
import type { ProxyFailure, ProxyResult } from '../proxy/proxy-request.js';
import type { UpstreamLease } from '../upstream/types.js';
import { readRetryableBody, replayOf } from './retryable-body.js';
import type { CompiledRetry, UpstreamPolicy } from './upstream-policy.js';

/** What one attempt is sent with, besides the exchange. */
export interface AttemptOptions {
  /**
   * The route's response_headers_ms / idle_ms; undefined: the timeout_seconds of the origin the
   * attempt's target belongs to (after a traffic-split fallback, not the origin chosen first).
   */
  readonly headersTimeoutMs: number | undefined;
  readonly bodyTimeoutMs: number | undefined;
  readonly connectMs: number | undefined;
  /** The body read already, whole: this attempt's copy of it. */
  readonly replayedBody: Readable | undefined;
  /** The start of a body that streams once, read already: sent before the rest of it. */
  readonly bodyReadAlready: Buffer | undefined;
  readonly retryOnStatus: ((status: number) => boolean) | undefined;
  /** A reset of this attempt is retried on another target (when the target's budget allows). */
  readonly resetRetried: boolean;
  /** The origin's answer arrived and is the client's: the request is not sent again. */
  readonly onAnswered: () => void;
}

/** How the forwarding step gets a target and sends one attempt to it. */
export interface Attempts {
  /** A lease on a target, passing over `avoid` while another is available; undefined when none is. */
  acquire(avoid: readonly string[] | undefined): UpstreamLease | undefined;
  send(lease: UpstreamLease, options: AttemptOptions): Promise<ProxyResult>;
}

/** No target was available for the first attempt (503 no_healthy_upstream). */
export const NO_TARGET = 'no_target';

/**
 * Forwards with a route's timeouts and retries. A failed attempt (connect error, reset, or a 502 /
 * 503 / 504 answer, as the route lists) of a retryable method is tried again on another target of the
 * origin, chosen by its balancer, after a backoff with full jitter — while attempts remain, the failed
 * target's retry budget allows it and the client is still there. A request with a body is retried only
 * when its declared length fits RETRY_BODY_BUFFER_BYTES and `retryBodies`, the replica's budget for
 * such buffers (the tenant's share of it), takes its bytes as they arrive: it is read first so it can be
 * sent again, and holds its bytes of the budget until the origin's answer arrives (then it is never
 * sent again) or the exchange ends; other bodies stream once. A request the origin answered (its final
 * head arrived, whether or not the client started to receive it) is never retried.
 */
export async function forwardWithPolicy(
  exchange: GatewayExchange,
  policy: UpstreamPolicy,
  attempts: Attempts,
  retryBodies: FillBudget,
): Promise<ProxyFailure | typeof NO_TARGET | undefined> {
  const tenantId = exchange.tenant?.id ?? '';
  let reserved = 0;
  const buffers = {
    reserve(bytes: number): boolean {
      if (!retryBodies.tryReserve(tenantId, bytes)) return false;
      reserved += bytes;
      return true;
    },
    release(): void {
      retryBodies.release(tenantId, reserved);
      reserved = 0;
    },
  };
  try {
    return await forwardAttempts(exchange, policy, attempts, buffers);
  } finally {
    buffers.release();
  }
}

/** The bytes of the budget a request's body holds while it is read, and until it is given back. */
interface BodyBuffers {
  reserve(bytes: number): boolean;
  release(): void;
}

async function forwardAttempts(
  exchange: GatewayExchange,
  policy: UpstreamPolicy,
  attempts: Attempts,
  buffers: BodyBuffers,
): Promise<ProxyFailure | typeof NO_TARGET | undefined> {
  const retry = policy.retry;
  let maxAttempts = 1;
  /** The whole body, while a later attempt may send it again. */
  let replayable: Buffer | undefined;
  let bodyReadAlready: Buffer | undefined;
  if (retry?.methods.has(exchange.req.method ?? 'GET')) {
    const body = await readRetryableBody(exchange, buffers.reserve);
    if (body === 'gone') return undefined;
    if (body === undefined || Buffer.isBuffer(body)) {
      replayable = body;
      maxAttempts = retry.attempts;
    } else {
      bodyReadAlready = body.readAlready;
    }
  }
  const base = {
    headersTimeoutMs: policy.responseHeadersMs,
    bodyTimeoutMs: policy.idleMs,
    connectMs: policy.connectMs,
    bodyReadAlready,
    onAnswered: () => {
      replayable = undefined;
      buffers.release();
    },
  };
  const tried: string[] = [];
  let lastFailure: ProxyFailure | undefined;
  /** Why the attempt about to be made is a retry (undefined for the first). */
  let retryReason: string | undefined;
  for (let attempt = 1; ; attempt++) {
    const lease = attempts.acquire(tried.length === 0 ? undefined : tried);
    if (lease === undefined) return attempt === 1 ? NO_TARGET : lastFailure;
    // Counted once it has a target: a retry with nowhere to go was never sent.
    if (retry !== undefined && retryReason !== undefined) {
      retry.counted('retried', retryReason);
      exchange.retries++;
    }
    const mayRetry = retry !== undefined && attempt < maxAttempts;
    const result = await attempts.send(lease, {
      ...base,
      replayedBody: replayable === undefined ? undefined : replayOf(replayable),
      retryOnStatus: mayRetry ? (status) => retryStatus(retry, lease, exchange, status) : undefined,
      resetRetried: mayRetry && retry.onReset,
    });
    if (result === undefined) return undefined;
    // Without a retry left, no answer was dropped: a failure is final.
    if (!mayRetry || retry === undefined) return 'retryStatus' in result ? undefined : result;
    let reason: string;
    if ('retryStatus' in result) {
      reason = String(result.retryStatus);
      lastFailure = {
        status: 502,
        code: 'upstream_error',
        message: `the origin answered ${result.retryStatus} and no other target was available`,
        outcome: { kind: 'response', status: result.retryStatus },
      };
    } else {
      if (clientGone(exchange) || !retryableFailure(retry, result)) return result;
      reason = result.outcome.kind;
      if (!lease.claimRetry?.(retry.budgetPercent, retry.budgetMinRetries)) {
        retry.counted('budget_exhausted', reason);
        return result;
      }
      lastFailure = result;
    }
    retryReason = reason;
    tried.push(lease.target.id);
    await backoff(exchange, retry, attempt);
    if (clientGone(exchange)) return undefined;
  }
}

/** A status the route retries on, with budget for it, and a client still waiting: drop this answer. */
function retryStatus(
  retry: CompiledRetry,
  lease: UpstreamLease,
  exchange: GatewayExchange,
  status: number,
): boolean {
  if (!retry.statuses.has(status) || clientGone(exchange)) return false;
  if (lease.claimRetry?.(retry.budgetPercent, retry.budgetMinRetries)) return true;
  retry.counted('budget_exhausted', String(status));
  return false;
}

function retryableFailure(retry: CompiledRetry, failure: ProxyFailure): boolean {
  if (failure.answered) return false;
  switch (failure.outcome.kind) {
    case 'connect_error':
      return retry.onConnectError;
    case 'reset':
      return retry.onReset && failure.status !== 413;
    default:
      return false;
  }
}

function clientGone(exchange: GatewayExchange): boolean {
  return exchange.res.destroyed;
}

/**
 * Full jitter: a random wait up to min(max, base × 2^(attempt-1)); over at once if the client leaves, or
 * left already (while a dropped answer was read to its end): its response closed then, and no `close`
 * would come to end the wait.
 */
function backoff(exchange: GatewayExchange, retry: CompiledRetry, attempt: number): Promise<void> {
  const ceiling = Math.min(retry.backoffMaxMs, retry.backoffBaseMs * 2 ** (attempt - 1));
  const wait = Math.floor(Math.random() * ceiling);
  if (wait <= 0 || clientGone(exchange)) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      exchange.res.off('close', done);
      resolve();
    };
    const timer = setTimeout(done, wait);
    exchange.res.once('close', done);
  });
}
