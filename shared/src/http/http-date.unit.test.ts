import { describe, expect, it } from 'vitest';
import { parseHttpDate } from './http-date.js';

const NOV_6_1994 = Date.UTC(1994, 10, 6, 8, 49, 37);

describe('parseHttpDate', () => {
  it.each([
    ['IMF-fixdate', 'Sun, 06 Nov 1994 08:49:37 GMT'],
    ['RFC 850', 'Sunday, 06-Nov-94 08:49:37 GMT'],
    ['asctime', 'Sun Nov  6 08:49:37 1994'],
  ])('reads the %s form', (_form, value) => {
    expect(parseHttpDate(value, Date.UTC(2026, 0, 1))).toBe(NOV_6_1994);
  });

  it('reads an RFC 850 year more than 50 years ahead as the last such year past', () => {
    expect(parseHttpDate('Tuesday, 01-Jan-80 00:00:00 GMT', Date.UTC(2026, 0, 1))).toBe(Date.UTC(1980, 0, 1));
    expect(parseHttpDate('Wednesday, 01-Jan-53 00:00:00 GMT', Date.UTC(2026, 0, 1))).toBe(
      Date.UTC(2053, 0, 1),
    );
  });

  it.each([
    ['a number', '3000'],
    ['an ISO date', '2026-09-01'],
    ['a date without time', '1 Sep 2026'],
    ['another zone', 'Sun, 06 Nov 1994 08:49:37 UTC'],
    ['a lower-case month', 'Sun, 06 nov 1994 08:49:37 GMT'],
    ['31 February', 'Tue, 31 Feb 2026 10:00:00 GMT'],
    ['hour 24', 'Sun, 06 Nov 1994 24:00:00 GMT'],
    ['second 60', 'Sun, 06 Nov 1994 08:49:60 GMT'],
    ['trailing text', 'Sun, 06 Nov 1994 08:49:37 GMT; length=12'],
    ['nothing', ''],
  ])('is no date for %s', (_case, value) => {
    expect(parseHttpDate(value)).toBeUndefined();
  });
});
