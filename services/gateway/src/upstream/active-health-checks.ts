import { isInternalListenerResponse } from '@vantageedge/shared/http/internal-listener';
import type { OriginAddressPolicy } from '@vantageedge/shared/net/origin-address-policy';
import { Agent, type buildConnector, request } from 'undici';
import { closableOnClosingTrailers, closingOnClosingTrailers } from './closing-trailers.js';
import type { Resolve } from './dns-lookups.js';
import { createGuardedConnector } from './guarded-connector.js';
import { DEFAULT_ORIGIN_TLS, type OriginTlsSettings, originTlsErrorCode } from './origin-tls.js';
import { OriginTlsBudgetSpentError } from './origin-tls-budget.js';
import { MIN_PROBE_INTERVAL_SECONDS, type TenantProbeBudget } from './probe-budget.js';
import type { HealthSettings } from './target-health.js';
import { withoutUnaskedContinue } from './unasked-continue.js';

const isBudgetRefusal = (error: unknown): boolean =>
  error instanceof OriginTlsBudgetSpentError ||
  (error as { cause?: unknown } | null)?.cause instanceof OriginTlsBudgetSpentError;

/**
 * Bytes of a probe's answer body read at most: past them the rest is left unread (its connection closed)
 * and the answer is judged by its head and what came before; a health page needs no more.
 */
export const PROBE_BODY_READ_LIMIT = 128 * 1024;

/**
 * Reads a probe's answer body to its end, or to PROBE_BODY_READ_LIMIT bytes. Throws when the body ends
 * otherwise: the connection cut before its end (a trailer section past the bounds the proxy holds an
 * answer to, a body shorter than its length) or the probe's timeout reached. Not undici's `dump`: it
 * resolves however the body ends, passing a probe whose answer the proxy would relay cut.
 */
async function readToItsEnd(body: AsyncIterable<Buffer> & { destroy(): void }): Promise<void> {
  let read = 0;
  for await (const chunk of body) {
    read += chunk.length;
    if (read > PROBE_BODY_READ_LIMIT) {
      body.destroy();
      return;
    }
  }
}

/** The most ticks an origin's round of probes is split into (each probes every n-th target). */
const MAX_SLICES_PER_ROUND = 10;

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
 * Probes every target with GET every `interval_seconds`; a 2xx/3xx answer read whole (up to
 * PROBE_BODY_READ_LIMIT bytes of body) within `timeout_seconds` is a success (Envoy's HTTP health checker
 * counts a stream reset or timed out before its end as a failure). The first round probes every target at
 * once; after it each target is probed once an interval, an origin's targets in up to MAX_SLICES_PER_ROUND ticks spread over the interval from a random
 * phase (Envoy's interval jitter), so origins built together do not probe together. Probes use their own small agent rather than the target's request pool, so a pool
 * saturated by slow requests does not queue (and fail) the probes. A target whose previous probe is
 * still running is skipped, so a hanging target costs one connection, not one per interval.
 * The interval is at least MIN_PROBE_INTERVAL_SECONDS, and every probe is taken from the tenant's
 * handle on the replica's budget (when one is given; released on stop): over budget, or while the
 * tenant has its bound of probes in flight, a target's probe waits for a later round. The tenant's
 * probe sockets, idle ones included, are counted by that handle over all its origins. A probe connects
 * only where the address policy allows (a refused address is a failed probe), and an answer of one of
 * the platform's internal listeners (x-vantageedge-internal) is a failed probe too: the proxy refuses
 * every answer of that target.
 * An https target is verified with the origin's TLS settings, as its requests are; a probe's connection
 * whose answer's trailers say `Connection: close` is closed, as a proxied request's is, and its answer is
 * read as a proxied request's (unasked-continue.ts).
 */
export function startActiveHealthChecks(
  targets: readonly ProbeTarget[],
  settings: HealthSettings['active'],
  addressPolicy: OriginAddressPolicy,
  budget?: TenantProbeBudget,
  resolveHost?: Resolve,
  tls: OriginTlsSettings = DEFAULT_ORIGIN_TLS,
  /** The tenant's handshake budget around each probe connection (OriginTlsBudget.connector). */
  handshakes?: (connector: buildConnector.connector, tls: OriginTlsSettings) => buildConnector.connector,
): ActiveHealthChecks {
  const intervalMs = Math.max(settings.interval_seconds, MIN_PROBE_INTERVAL_SECONDS) * 1000;
  // The tenant's probe sockets, over all its origins, are counted and bounded.
  const counted = (connector: buildConnector.connector) => budget?.connector(connector) ?? connector;
  const timeoutMs = settings.timeout_seconds * 1000;
  const keepAliveMs = Math.min(intervalMs * 2, 60_000);
  const agent = new Agent({
    connections: 1,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    // An answer is read as a proxied request's is (an unasked 100 left out; past the bounds on interim
    // answers and header lines, the probe fails), so a probe passes where the proxy answers, not elsewhere.
    connect: closableOnClosingTrailers(
      withoutUnaskedContinue(
        counted(createGuardedConnector(addressPolicy, { timeout: timeoutMs }, resolveHost, tls, handshakes)),
      ),
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
    let refused = false;
    try {
      const response = await request(target.probeUrl, {
        method: 'GET',
        dispatcher: probes,
        signal: AbortSignal.any([stopping.signal, AbortSignal.timeout(timeoutMs)]),
        headers: { 'user-agent': 'vantageedge-health-check' },
      });
      const answered =
        response.statusCode >= 200 &&
        response.statusCode < 400 &&
        !isInternalListenerResponse(response.headers);
      await readToItsEnd(response.body);
      success = answered;
    } catch (error) {
      success = false;
      // Not sent: the tenant's handshakes spent their budget (counted there). The target keeps its state.
      if (isBudgetRefusal(error)) return;
      refused = budget?.refused(error) ?? false;
      const reason = originTlsErrorCode(error);
      if (reason !== undefined && !stopping.signal.aborted) target.onTlsFailure?.(reason, error as Error);
    }
    if (!stopping.signal.aborted && !refused) target.onProbe(success);
  };

  // Each slice of the targets (every `slices`-th one) is probed in its own tick, the ticks spread over
  // the interval from a random phase: an origin's probes, and those of origins built together, do not
  // all come at once, where the budget's burst (one second's worth) skipped some every round.
  const slices = Math.max(1, Math.min(targets.length, MAX_SLICES_PER_ROUND));
  const sliceMs = intervalMs / slices;
  // Slice n is targets n, n + slices, …; each slice's turn starts at the target its previous turn left
  // out for budget (its position in the slice), so none starves.
  const startOfSlice = new Array<number>(slices).fill(0);
  const probeSlice = (slice: number): void => {
    const size = Math.ceil((targets.length - slice) / slices);
    const start = startOfSlice[slice]!;
    let leftOut = -1;
    for (let i = 0; i < size; i++) {
      const position = (start + i) % size;
      const target = targets[slice + position * slices]!;
      if (probing.has(target)) continue;
      const ended = budget?.tryStart();
      if (budget !== undefined && ended === undefined) {
        if (leftOut < 0) leftOut = position;
        continue;
      }
      probing.add(target);
      const done = probe(target).finally(() => {
        ended?.();
        probing.delete(target);
        running.delete(done);
      });
      running.add(done);
    }
    if (leftOut >= 0) startOfSlice[slice] = leftOut;
  };

  let nextSlice = 0;
  const tick = (): void => {
    probeSlice(nextSlice);
    nextSlice = (nextSlice + 1) % slices;
  };

  // The first round probes every target at once (a new origin learns its targets' health at once); the
  // ticks begin an interval later, so no target is probed twice within one interval.
  for (let slice = 0; slice < slices; slice++) probeSlice(slice);
  let timer: NodeJS.Timeout | undefined;
  const ticking = setTimeout(
    () => {
      tick();
      timer = setInterval(tick, sliceMs);
      timer.unref();
    },
    intervalMs + Math.random() * sliceMs,
  );
  ticking.unref();

  return {
    async stop() {
      clearTimeout(ticking);
      clearInterval(timer);
      budget?.release();
      stopping.abort();
      await Promise.allSettled(running);
      await agent.destroy();
    },
  };
}
