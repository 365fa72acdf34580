/**
 * HTTP-date (RFC 9110 §5.6.7) in the three forms a recipient must accept: IMF-fixdate
 * (`Sun, 06 Nov 1994 08:49:37 GMT`), the obsolete RFC 850 form (`Sunday, 06-Nov-94 08:49:37 GMT`) and
 * asctime (`Sun Nov  6 08:49:37 1994`). Anything else is no date: `Date.parse` would read `3000`, `2026-09-01`
 * or `1 Sep 2026` as dates, and §13.1.3 has a conditional field that is not an HTTP-date ignored.
 */

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const MONTH = `(${MONTHS.join('|')})`;
const TIME = '(\\d{2}):(\\d{2}):(\\d{2})';
const IMF_FIXDATE = new RegExp(`^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\\d{2}) ${MONTH} (\\d{4}) ${TIME} GMT$`);
const RFC_850 = new RegExp(
  `^(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), (\\d{2})-${MONTH}-(\\d{2}) ${TIME} GMT$`,
);
const ASCTIME = new RegExp(`^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) ${MONTH} ([ \\d]\\d) ${TIME} (\\d{4})$`);

/** Milliseconds since the epoch of an HTTP-date, or undefined when `value` is not one. */
export function parseHttpDate(value: string, nowMs: number = Date.now()): number | undefined {
  let match = IMF_FIXDATE.exec(value);
  if (match !== null) return utc(match[3]!, match[2]!, match[1]!, match[4]!, match[5]!, match[6]!);
  match = RFC_850.exec(value);
  if (match !== null) {
    const year = twoDigitYear(Number(match[3]), nowMs);
    return utc(String(year), match[2]!, match[1]!, match[4]!, match[5]!, match[6]!);
  }
  match = ASCTIME.exec(value);
  if (match !== null) return utc(match[6]!, match[1]!, match[2]!.trim(), match[3]!, match[4]!, match[5]!);
  return undefined;
}

/**
 * RFC 9110 §5.6.7: a two-digit year more than 50 years in the future is the most recent past year with
 * those digits.
 */
function twoDigitYear(digits: number, nowMs: number): number {
  const thisYear = new Date(nowMs).getUTCFullYear();
  const year = Math.floor(thisYear / 100) * 100 + digits;
  return year > thisYear + 50 ? year - 100 : year;
}

/** The instant, or undefined for a day, hour, minute or second out of range (31 Feb, 25:00, 60 s). */
function utc(
  year: string,
  month: string,
  day: string,
  hours: string,
  minutes: string,
  seconds: string,
): number | undefined {
  const monthIndex = MONTHS.indexOf(month);
  const [y, d, h, m, s] = [year, day, hours, minutes, seconds].map(Number) as [
    number,
    number,
    number,
    number,
    number,
  ];
  if (h > 23 || m > 59 || s > 59) return undefined;
  const at = Date.UTC(y, monthIndex, d, h, m, s);
  const date = new Date(at);
  return date.getUTCFullYear() === y && date.getUTCMonth() === monthIndex && date.getUTCDate() === d
    ? at
    : undefined;
}
