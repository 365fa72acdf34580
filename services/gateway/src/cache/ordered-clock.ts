/**
 * The response cache's clock for ordering its own events against the purges it heard (a fill begun, a
 * store read sent, a purge message applied): `now` in milliseconds, but never the same value twice. A
 * request that begins in the millisecond a purge was applied is after it, and a fill that began in the
 * millisecond before it is before it, so neither is taken for the other.
 */
export function orderedClock(now: () => number): () => number {
  let last = Number.NEGATIVE_INFINITY;
  return () => {
    const at = now();
    // A microsecond on: far less than the clock's resolution, still a distinct double at epoch scale.
    last = at > last ? at : last + 0.001;
    return last;
  };
}
