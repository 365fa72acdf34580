/**
 * A route stage's answer for a client-sent value (an Origin, a client address), remembered: clients
 * send the same few values on every request, so the work is done once per value. The values are the
 * client's to choose, so at most `limit` are kept, all forgotten at once when full.
 */
export function rememberVerdicts<Verdict>(
  decide: (value: string) => Verdict,
  limit = 256,
): (value: string) => Verdict {
  const verdicts = new Map<string, Verdict>();
  return (value) => {
    let verdict = verdicts.get(value);
    if (verdict === undefined) {
      verdict = decide(value);
      if (verdicts.size >= limit) verdicts.clear();
      verdicts.set(value, verdict);
    }
    return verdict;
  };
}
