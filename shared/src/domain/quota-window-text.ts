import type { QuotaExplanation } from './request-explanation.js';

type QuotaWindowExplanation = QuotaExplanation['windows'][number];

/**
 * One quota window of an explanation as people read it (the CLI's and the console's explain), e.g.
 * `API key 3f0c…: 998 of 1000 a day used, 2 left until 2026-12-01T00:00:00.000Z, counter q:{…}:…`.
 */
export function quotaWindowText(window: QuotaWindowExplanation, counts: QuotaExplanation['counts']): string {
  const who = window.subject === 'tenant' ? 'tenant' : `API key ${window.api_key_id}`;
  const allowance = `${window.limit} a ${window.period}`;
  const usage =
    window.used === null
      ? `${allowance}, used ${counts === 'unknown' ? 'unknown' : 'not read'}, until ${window.resets_at}`
      : `${window.used} of ${allowance} used, ${window.remaining} left until ${window.resets_at}`;
  return `${who}: ${usage}, counter ${window.key}`;
}
