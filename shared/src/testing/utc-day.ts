const DAY_MS = 86_400_000;

/**
 * Request quotas count per UTC day and month, and a month ends at a UTC midnight too. A test that
 * compares counts over a span of up to `spanMs` from now waits out a midnight that would fall inside
 * it: the gateway would start its counts afresh half-way, and the test compare them with the old ones.
 */
export async function outsideTheUtcDaysLast(spanMs: number): Promise<void> {
  const untilMidnightMs = DAY_MS - (Date.now() % DAY_MS);
  if (untilMidnightMs < spanMs) await new Promise((resolve) => setTimeout(resolve, untilMidnightMs + 1_000));
}
