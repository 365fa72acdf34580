import { isInternalListenerResponse } from '@vantageedge/shared/http/internal-listener';
import type { OriginAddressPolicy } from '@vantageedge/shared/net/origin-address-policy';
import { Agent, request } from 'undici';
import { closableOnClosingTrailers, closingOnClosingTrailers } from './closing-trailers.js';
import type { Resolve } from './dns-lookups.js';
import { createGuardedConnector } from './guarded-connector.js';
import { DEFAULT_ORIGIN_TLS, type OriginTlsSettings, originTlsErrorCode } from './origin-tls.js';
import { MIN_PROBE_INTERVAL_SECONDS, type TenantProbeBudget } from './probe-budget.js';
import type { HealthSettings } from './target-health.js';

export interface ProbeTarget {
  /** Absolute URL probed: the target's URL + origin.health_check_path. */
  readonly probeUrl: string;
  onProbe(success: boolean): void;
  /** A probe's connection failed its TLS handshake (the probe fails too). */
  onTlsFailure?(reason: string, error: Error): void;
}

export interface ActiveHealthChecks {
  stop(): Promise<void>;
}

/**
 * Probes every target with GET every `interval_seconds`; a 2xx/3xx answer within `timeout_seconds`
 * is a success. Probes use their own small agent rather than the target's request pool, so a pool
 * saturated by slow requests does not queue (and fail) the probes. A target whose previous probe is
 * still running is skipped, so a hanging target costs one connection, not one per interval.
 * The interval is at least MIN_PROBE_INTERVAL_SECONDS, and every probe is taken from the tenant's
 * handle on the replica's budget (when one is given; released on stop): over budget, a target's probe
 * waits for a later round. A probe connects only where the address policy allows (a refused address
 * is a failed probe), and an answer of one of the platform's internal listeners
 * (x-vantageedge-internal) is a failed probe too: the proxy refuses every answer of that target.
 * An https target is verified with the origin's TLS settings, as its requests are; a probe's connection
 * whose answer's trailers say `Connection: close` is closed, as a proxied request's is.
 */
export function startActiveHealthChecks(
  targets: readonly ProbeTarget[],
  settings: HealthSettings['active'],
  addressPolicy: OriginAddressPolicy,
  budget?: TenantProbeBudget,
  resolveHost?: Resolve,
  tls: OriginTlsSettings = DEFAULT_ORIGIN_TLS,
): ActiveHealthChecks {
  const intervalMs = Math.max(settings.interval_seconds, MIN_PROBE_INTERVAL_SECONDS) * 1000;
  const timeoutMs = settings.timeout_seconds * 1000;
  const keepAliveMs = Math.min(intervalMs * 2, 60_000);
  const agent = new Agent({
    connections: 1,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    connect: closableOnClosingTrailers(
      createGuardedConnector(addressPolicy, { timeout: timeoutMs }, resolveHost, tls),
    ),
    keepAliveTimeout: keepAliveMs,
    // An origin's `Keep-Alive: timeout=` cannot keep a probe's socket longer (undici allows 10 minutes).
    keepAliveMaxTimeout: keepAliveMs,
  });
  // A connection whose answer's trailers say `Connection: close` is closed, as the proxy's are.
  const probes = agent.compose(closingOnClosingTrailers);
  const stopping = new AbortController();
  const running = new Set<Promise<void>>();
  const probing = new Set<ProbeTarget>();

  const probe = async (target: ProbeTarget): Promise<void> => {
    let success = false;
    try {
      const response = await request(target.probeUrl, {
        method: 'GET',
        dispatcher: probes,
        signal: AbortSignal.any([stopping.signal, AbortSignal.timeout(timeoutMs)]),
        headers: { 'user-agent': 'vantageedge-health-check' },
      });
      await response.body.dump();
      success =
        response.statusCode >= 200 &&
        response.statusCode < 400 &&
        !isInternalListenerResponse(response.headers);
    } catch (error) {
      success = false;
      const reason = originTlsErrorCode(error);
      if (reason !== undefined && !stopping.signal.aborted) target.onTlsFailure?.(reason, error as Error);
    }
    if (!stopping.signal.aborted) target.onProbe(success);
  };

  // The next round starts at the first target this one left out for budget, so none starves.
  let first = 0;
  const round = (): void => {
    const count = targets.length;
    const start = first;
    let leftOut = -1;
    for (let i = 0; i < count; i++) {
      const index = (start + i) % count;
      const target = targets[index]!;
      if (probing.has(target)) continue;
      if (budget !== undefined && !budget.tryTake()) {
        if (leftOut < 0) leftOut = index;
        continue;
      }
      probing.add(target);
      const done = probe(target).finally(() => {
        probing.delete(target);
        running.delete(done);
      });
      running.add(done);
    }
    if (leftOut >= 0) first = leftOut;
  };

  round();
  const timer = setInterval(round, intervalMs);
  timer.unref();

  return {
    async stop() {
      clearInterval(timer);
      budget?.release();
      stopping.abort();
      await Promise.allSettled(running);
      await agent.destroy();
    },
  };
}
