/**
 * The formats of the admin API's request headers and small query parameters, as regular expressions
 * shared by the code that parses them and by /openapi.json, so the document says exactly what the
 * service accepts (a malformed value is a 400; a well-formed stale If-Match is a 412).
 */
export const HEADER_PATTERNS = {
  /**
   * `*`, a bare revision (3), or a list of up to 20 ETags of ours ("3", W/"3"); "3-redacted" is revision
   * 3 as a reader was shown it.
   */
  ifMatch:
    '^\\*$|^[0-9]{1,19}$|^(?:W/)?"[0-9]{1,19}(?:-redacted)?"(?:[ \\t]*,[ \\t]*(?:W/)?"[0-9]{1,19}(?:-redacted)?"){0,19}$',
  /** 1–255 visible ASCII characters. */
  idempotencyKey: '^[!-~]{1,255}$',
  /** An event position (X-Min-Position, min_position). */
  minPosition: '^[0-9]{1,19}$',
  /** A page cursor: the sort key of the last row of the previous page. */
  cursor: '^[0-9]{1,18}$',
  /** Up to 60 s: 5s, 1.5 (seconds) or 500ms. */
  waitForRollout: '^(?:(?:60(?:\\.0{1,3})?|[1-5]?[0-9](?:\\.[0-9]{1,3})?)s?|(?:60000|[1-5]?[0-9]{1,4})ms)$',
} as const;

export const HEADER_FORMATS = {
  ifMatch: new RegExp(HEADER_PATTERNS.ifMatch),
  idempotencyKey: new RegExp(HEADER_PATTERNS.idempotencyKey),
  minPosition: new RegExp(HEADER_PATTERNS.minPosition),
  cursor: new RegExp(HEADER_PATTERNS.cursor),
  waitForRollout: new RegExp(HEADER_PATTERNS.waitForRollout),
} as const;
