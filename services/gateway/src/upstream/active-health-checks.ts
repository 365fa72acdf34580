import type { OriginAddressPolicy } from '@vantageedge/shared/net/origin-address-policy';
import { Agent, request } from 'undici';
import { createGuardedConnector } from './guarded-connector.js';
import type { HealthSettings } from './target-health.js';

export interface ProbeTarget {
  /** Absolute URL probed: the target's URL + origin.health_check_path. */
  readonly probeUrl: string;
  onProbe(success: boolean): void;
}

export interface ActiveHealthChecks {
  stop(): Promise<void>;
}

/**
 * Probes every target with GET every `interval_seconds`; a 2xx/3xx answer within `timeout_seconds`
 * is a success. Probes use their own small agent rather than the target's request pool, so a pool
 * saturated by slow requests does not queue (and fail) the probes. A target whose previous probe is
 * still running is skipped, so a hanging target costs one connection, not one per interval. A probe
 * connects only where the address policy allows (a refused address is a failed probe).
 */
export function startActiveHealthChecks(
  targets: readonly ProbeTarget[],
  settings: HealthSettings['active'],
  addressPolicy: OriginAddressPolicy,
): ActiveHealthChecks {
  const timeoutMs = settings.timeout_seconds * 1000;
  const agent = new Agent({
    connections: 1,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    connect: createGuardedConnector(addressPolicy, { timeout: timeoutMs }),
    keepAliveTimeout: Math.min(settings.interval_seconds * 1000 * 2, 60_000),
  });
  const stopping = new AbortController();
  const running = new Set<Promise<void>>();
  const probing = new Set<ProbeTarget>();

  const probe = async (target: ProbeTarget): Promise<void> => {
    let success = false;
    try {
      const response = await request(target.probeUrl, {
        method: 'GET',
        dispatcher: agent,
        signal: AbortSignal.any([stopping.signal, AbortSignal.timeout(timeoutMs)]),
        headers: { 'user-agent': 'vantageedge-health-check' },
      });
      await response.body.dump();
      success = response.statusCode >= 200 && response.statusCode < 400;
    } catch {
      success = false;
    }
    if (!stopping.signal.aborted) target.onProbe(success);
  };

  const round = (): void => {
    for (const target of targets) {
      if (probing.has(target)) continue;
      probing.add(target);
      const done = probe(target).finally(() => {
        probing.delete(target);
        running.delete(done);
      });
      running.add(done);
    }
  };

  round();
  const timer = setInterval(round, settings.interval_seconds * 1000);
  timer.unref();

  return {
    async stop() {
      clearInterval(timer);
      stopping.abort();
      await Promise.allSettled(running);
      await agent.destroy();
    },
  };
}
