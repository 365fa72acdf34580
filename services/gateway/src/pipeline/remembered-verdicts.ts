export interface RememberedVerdictsLimits {
  /** Values kept at most; all are forgotten at once when full. */
  readonly entries?: number;
  /** A longer value is decided every time, never kept. */
  readonly valueLength?: number;
}

/**
 * A route stage's answer for a client-sent value (an Origin, a client address), remembered: clients
 * send the same few values on every request, so the work is done once per value. The values are the
 * client's to choose, and every route of every tenant on a replica has its own memory, so it is small:
 * at most `entries` values of at most `valueLength` characters (a client can send a 16 KB Origin).
 */
export function rememberVerdicts<Verdict>(
  decide: (value: string) => Verdict,
  { entries = 256, valueLength = 128 }: RememberedVerdictsLimits = {},
): (value: string) => Verdict {
  const verdicts = new Map<string, Verdict>();
  return (value) => {
    let verdict = verdicts.get(value);
    if (verdict === undefined) {
      verdict = decide(value);
      if (value.length > valueLength) return verdict;
      if (verdicts.size >= entries) verdicts.clear();
      verdicts.set(value, verdict);
    }
    return verdict;
  };
}
