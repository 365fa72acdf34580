import { HEADER_FORMATS } from '../http/header-formats.js';

/** The longest a request may wait for a rollout. */
export const MAX_ROLLOUT_WAIT_MS = 60_000;

const ISSUE = 'must be a duration of at most 60s, such as 5s, 1.5 or 500ms';

/**
 * `?wait_for_rollout=5s` → 5000. Accepts `<n>ms`, `<n>s` and a bare number of seconds, up to 60 s —
 * exactly the pattern /openapi.json gives. Returns the problem text for a 400 otherwise.
 */
export function parseWaitForRollout(value: unknown): { ok: true; ms: number } | { ok: false; issue: string } {
  if (typeof value !== 'string' || !HEADER_FORMATS.waitForRollout.test(value))
    return { ok: false, issue: ISSUE };
  const ms = value.endsWith('ms') ? Number(value.slice(0, -2)) : Number(value.replace(/s$/, '')) * 1000;
  return { ok: true, ms: Math.min(MAX_ROLLOUT_WAIT_MS, Math.round(ms)) };
}
