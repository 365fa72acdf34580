/** How long one readiness answer serves the /readyz probes that follow it. */
const READINESS_REUSE_MS = 1_000;

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
