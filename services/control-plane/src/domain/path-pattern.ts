import { normalizePath } from '@vantageedge/shared/routing/normalize-path';

/**
 * Route path patterns: exact paths (`/api/status`), named parameters (`/api/users/:id`) and a trailing
 * wildcard (`/api/users/*`). Returns the problem with a pattern, or null when it is valid.
 *
 * A pattern is written as the gateway reads every request path (shared/src/routing/normalize-path.ts):
 * no `.` or `..` segments, and `%` only in an escape the gateway keeps as it is — two upper-case hex
 * digits, not an unreserved character (those are decoded: `%41` is `A`), not NUL or a backslash
 * (refused). The gateway compiles a pattern through the same normalisation, so anything else would be
 * skipped there (an unreadable escape) or served at another path (`/x/../admin/*` is `/admin/*`).
 */
const LITERAL = /^[A-Za-z0-9._~!$&'()+,;=@%-]+$/;
const PARAM = /^:[A-Za-z_][A-Za-z0-9_]*$/;
export const MAX_PATH_PATTERN_LENGTH = 512;

/** An escape the gateway keeps as written: upper-case hex, not %00, %5C or an unreserved character. */
const ESCAPE = '%(?:0[1-9A-F]|1[0-9A-F]|2[0-9A-CF]|3[A-F]|40|5[BDE]|60|7[B-DF]|[89A-F][0-9A-F])';
const NOT_DOT = `(?:[A-Za-z0-9_~!$&'()+,;=@-]|${ESCAPE})`;
/** A literal segment other than `.` and `..`: one character that is not a dot, or three dots or more. */
const LITERAL_SEGMENT = `(?:\\.*${NOT_DOT}(?:\\.|${NOT_DOT})*|\\.{3,})`;
/**
 * The same syntax as one regular expression, for /openapi.json (it cannot say that a parameter name
 * appears once; pathPatternProblem does).
 */
export const PATH_PATTERN_SYNTAX = `^/(?:\\*)?$|^(?:/(?:${LITERAL_SEGMENT}|:[A-Za-z_][A-Za-z0-9_]*))+(?:/\\*)?$`;

export function pathPatternProblem(pattern: string): string | null {
  if (!pattern.startsWith('/')) return 'must start with /';
  if (pattern.length > MAX_PATH_PATTERN_LENGTH)
    return `must be at most ${MAX_PATH_PATTERN_LENGTH} characters`;
  if (pattern === '/') return null;
  const segments = pattern.slice(1).split('/');
  const params = new Set<string>();
  for (const [index, segment] of segments.entries()) {
    if (segment === '') return 'must not contain empty segments (// or a trailing /)';
    if (segment === '*') {
      if (index !== segments.length - 1) return 'the wildcard * is only allowed as the last segment';
      continue;
    }
    if (segment.startsWith(':')) {
      if (!PARAM.test(segment)) return `parameter ${segment} must be :name (letters, digits, _)`;
      if (params.has(segment)) return `parameter ${segment} appears twice`;
      params.add(segment);
      continue;
    }
    if (!LITERAL.test(segment)) return `segment "${segment}" contains characters not allowed in a path`;
    if (segment === '.' || segment === '..')
      return 'must not contain . or .. segments (the gateway resolves them: write the path they lead to)';
  }
  return gatewayReadingProblem(pattern);
}

/** Null when the gateway's normalisation keeps the pattern exactly as written. */
function gatewayReadingProblem(pattern: string): string | null {
  const normalized = normalizePath(pattern, 'keep');
  if (!normalized.ok) {
    switch (normalized.reason) {
      case 'bad_escape':
        return 'every % must start an escape of two hex digits (%20, %C3%A9)';
      case 'forbidden_character':
        return 'must not contain an escaped NUL or backslash (%00, %5C), which the gateway refuses in a path';
      default:
        return `is refused by the gateway's path normalisation (${normalized.reason})`;
    }
  }
  if (normalized.path !== pattern)
    return `normalises to ${normalized.path} (escapes of letters, digits and -._~ decoded, hex in upper case): write that`;
  return null;
}
