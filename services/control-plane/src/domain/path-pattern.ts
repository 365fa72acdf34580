/**
 * Route path patterns: exact paths (`/api/status`), named parameters (`/api/users/:id`) and a trailing
 * wildcard (`/api/users/*`). Returns the problem with a pattern, or null when it is valid.
 */
const LITERAL = /^[A-Za-z0-9._~!$&'()+,;=@%-]+$/;
const PARAM = /^:[A-Za-z_][A-Za-z0-9_]*$/;
export const MAX_PATH_PATTERN_LENGTH = 512;

/**
 * The same syntax as one regular expression, for /openapi.json (it cannot say that a parameter name
 * appears once; pathPatternProblem does).
 */
export const PATH_PATTERN_SYNTAX =
  "^/(?:\\*)?$|^(?:/(?:[A-Za-z0-9._~!$&'()+,;=@%-]+|:[A-Za-z_][A-Za-z0-9_]*))+(?:/\\*)?$";

/**
 * Names and other free text: no leading or trailing whitespace. JavaScript's \s spelled out, so every
 * regex engine (this service's, a client's, the API fuzzer's) reads the pattern alike.
 */
const WHITESPACE = '\\t\\n\\v\\f\\r \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff';
export const NO_OUTER_WHITESPACE = new RegExp(`^[^${WHITESPACE}](?:[\\s\\S]*[^${WHITESPACE}])?$`);

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
  }
  return null;
}
