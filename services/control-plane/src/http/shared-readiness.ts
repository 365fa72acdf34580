/** How long one readiness answer serves the /readyz probes that follow it. */
const READINESS_REUSE_MS = 1_000;

/**
 * How long one check of /readyz may take before it counts as failed: PostgreSQL that accepts statements
 * and answers none (stalled, or every pooled connection busy) must make the control plane not ready, not
 * leave the probe without an answer.
 */
export const READINESS_CHECK_TIMEOUT_MS = 2_000;

/** `probe`'s outcome, or a rejection once `timeoutMs` has passed without one. */
export function answeredWithin<T>(probe: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([probe, late]).finally(() => clearTimeout(timer));
}

/**
 * /readyz needs no credentials, and its checks query PostgreSQL on the pool the admin API shares: probes
 * arriving together share one run of the checks, and its answer serves those of the next second too, so
 * a flood of probes costs the database at most one run a second.
 */
export function sharedReadiness<T>(
  check: () => Promise<T>,
  clock: () => number = Date.now,
): () => Promise<T> {
  let last: { answer: Promise<T>; at: number } | undefined;
  return () => {
    const now = clock();
    if (last === undefined || now - last.at >= READINESS_REUSE_MS) {
      const answer = check();
      const run = { answer, at: Number.POSITIVE_INFINITY };
      last = run;
      // Reused from when it is known (a slow check is shared by every probe that waits for it).
      void answer.finally(() => {
        run.at = clock();
      });
    }
    return last.answer;
  };
}
