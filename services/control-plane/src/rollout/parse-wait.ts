/** The longest a request may wait for a rollout. */
export const MAX_ROLLOUT_WAIT_MS = 60_000;

const DURATION = /^(\d+(?:\.\d+)?)(ms|s)?$/;

/**
 * `?wait_for_rollout=5s` → 5000. Accepts `<n>ms`, `<n>s` and a bare number of seconds, up to 60 s.
 * Returns the problem text for a 400 `validation_failed` otherwise.
 */
export function parseWaitForRollout(value: unknown): { ok: true; ms: number } | { ok: false; issue: string } {
  if (typeof value !== 'string') return { ok: false, issue: 'must be a duration such as 5s or 500ms' };
  const match = DURATION.exec(value.trim());
  if (!match) return { ok: false, issue: 'must be a duration such as 5s or 500ms' };
  const amount = Number(match[1]);
  const ms = match[2] === 'ms' ? amount : amount * 1000;
  if (!Number.isFinite(ms) || ms > MAX_ROLLOUT_WAIT_MS) {
    return { ok: false, issue: `must be at most ${MAX_ROLLOUT_WAIT_MS / 1000}s` };
  }
  return { ok: true, ms: Math.round(ms) };
}
