import { describe, expect, it } from 'vitest';
import { periodBounds } from './quota-windows.js';

describe('periodBounds', () => {
  it.each([
    ['2026-12-07T18:21:17Z', 'day', '2026-12-07T00:00:00.000Z', '2026-12-08T00:00:00.000Z', '20261207'],
    ['2026-12-31T23:59:59Z', 'month', '2026-12-01T00:00:00.000Z', '2027-01-01T00:00:00.000Z', '202612'],
    // Regression: Date.UTC reads the years 0–99 as 1900–1999, so explain's quota window for an `at_time`
    // of year 50 was one of 1950, ending before the time it was asked for.
    ['0050-06-15T12:00:00Z', 'day', '0050-06-15T00:00:00.000Z', '0050-06-16T00:00:00.000Z', '00500615'],
    ['0050-12-15T12:00:00Z', 'month', '0050-12-01T00:00:00.000Z', '0051-01-01T00:00:00.000Z', '005012'],
  ] as const)('%s, by %s: from %s to %s, labelled %s', (at, period, start, end, label) => {
    const now = Date.parse(at);
    const bounds = periodBounds(period, now);
    expect(new Date(bounds.start).toISOString()).toBe(start);
    expect(new Date(bounds.end).toISOString()).toBe(end);
    expect(bounds.label).toBe(label);
    expect(bounds.start <= now && now < bounds.end).toBe(true);
  });
});
