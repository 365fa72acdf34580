import { normalizePath } from '@vantageedge/shared/routing/normalize-path';

/**
 * Route path patterns: exact paths (`/api/status`), named parameters (`/api/users/:id`) and a trailing
 * wildcard (`/api/users/*`). Returns the problem with a pattern, or null when it is valid.
 *
 * The gateway compiles a pattern through the normalisation every request path goes through
 * (shared/src/routing/normalize-path.ts), so a pattern must be one it can read and that stays where it
 * is written: no `.` or `..` segment, also escaped (`%2E`), and `%` only in an escape of two hex digits
 * other than NUL or a backslash (refused). Other escapes may be written in either case or encode an
 * unreserved character (`%7e`, `%41`): the gateway reads them as every request path (`%7E`, `A`).
 */
const LITERAL = /^[A-Za-z0-9._~!$&'()+,;=@%-]+$/;
const PARAM = /^:[A-Za-z_][A-Za-z0-9_]*$/;
export const MAX_PATH_PATTERN_LENGTH = 512;

/** An escape the gateway reads, other than a dot (%2E): two hex digits in any case, not %00 or %5C. */
const ESCAPE = '%(?:0[1-9A-Fa-f]|2[0-9A-Da-dFf]|5[0-9ABabD-Fd-f]|[1346-9A-Fa-f][0-9A-Fa-f])';
const NOT_DOT = `(?:[A-Za-z0-9_~!$&'()+,;=@-]|${ESCAPE})`;
const DOT = '(?:\\.|%2[Ee])';
/**
 * A literal segment other than `.` and `..`, escaped or not, also with `;` parameters (`..;x`, which
 * Tomcat reads as `..`): one non-dot, or three dots or more.
 */
const LITERAL_SEGMENT = `(?!${DOT}{1,2}(?:;|/|$))(?:${DOT}*${NOT_DOT}(?:${DOT}|${NOT_DOT})*|${DOT}{3,})`;
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
    const dots = segment.replace(/%2e/gi, '.').split(';', 1)[0];
    if (dots === '.' || dots === '..')
      return 'must not contain . or .. segments, also escaped (the gateway resolves them: write the path they lead to)';
  }
  return gatewayReadingProblem(pattern);
}

/** What a path the gateway forwards by may hold as written: RFC 3986 path characters and `%` escapes. */
export const FORWARDED_PATH_SYNTAX = "^/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$";
const FORWARDED_PATH = new RegExp(FORWARDED_PATH_SYNTAX);

/**
 * The problem with a path a route forwards by (strip_prefix, rewrite_path's prefixes and template), or
 * null. The gateway compares such a prefix with request paths after its normalisation, so one it cannot
 * read that way would never match (the request forwarded as it came); a target it cannot read would
 * reach the origin as no request path ever does. Characters beyond a path's (Unicode, `\`, `"`, …) are
 * written percent-encoded, as UTF-8, as requests carry them.
 */
export function forwardedPathProblem(path: string): string | null {
  if (!path.startsWith('/')) return 'must be a path starting with /';
  if (!FORWARDED_PATH.test(path)) return FORWARDED_PATH_CHARACTERS;
  return gatewayReadingProblem(path);
}

const FORWARDED_PATH_CHARACTERS =
  "must be a path of letters, digits, -._~!$&'()*+,;=:@ and / (percent-encode other characters as UTF-8, e.g. %C3%A9)";

/**
 * The problem with an origin's health_check_path, or null. Gateways probe `<target URL><path>` as a
 * URL, which resolves `.` and `..` segments (also escaped, %2E) and percent-encodes what a path cannot
 * hold: a probe must go to the path as written, under the target's own path.
 */
export function probePathProblem(path: string): string | null {
  if (!path.startsWith('/')) return 'must be a path starting with /';
  if (!FORWARDED_PATH.test(path)) return FORWARDED_PATH_CHARACTERS;
  if (/%(?![0-9A-Fa-f]{2})/.test(path)) return 'every % must start an escape of two hex digits (%20, %C3%A9)';
  for (const segment of path.slice(1).split('/')) {
    const dots = segment.replace(/%2e/gi, '.').split(';', 1)[0];
    if (dots === '.' || dots === '..') {
      return "must not contain . or .. segments, also escaped: the probe would go to the path they lead to, outside the target's path";
    }
  }
  return null;
}

/** forwardedPathProblem for a path whose characters are checked already (null when they are not allowed). */
export function forwardedPathEscapeProblem(path: string): string | null {
  return FORWARDED_PATH.test(path) ? gatewayReadingProblem(path) : null;
}

/** Null when the gateway's normalisation can read the pattern. */
function gatewayReadingProblem(pattern: string): string | null {
  const normalized = normalizePath(pattern, 'keep');
  if (normalized.ok) return null;
  switch (normalized.reason) {
    case 'bad_escape':
      return 'every % must start an escape of two hex digits (%20, %C3%A9)';
    case 'forbidden_character':
      return 'must not contain an escaped NUL or backslash (%00, %5C), which the gateway refuses in a path';
    case 'dot_segment_parameter':
      return 'must not contain a dot segment with ; parameters (..;, .;x), which the gateway refuses in a path';
    default:
      return `is refused by the gateway's path normalisation (${normalized.reason})`;
  }
}
