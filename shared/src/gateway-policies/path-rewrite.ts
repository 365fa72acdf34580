import type { RewritePath } from '../domain/route-policies.js';
import { normalizePath } from '../routing/normalize-path.js';

/**
 * The path the origin sees for a request path, undefined when the rewrite leaves it as it is, or null
 * when it would be longer than MAX_REWRITTEN_PATH_LENGTH (the gateway answers 414 uri_too_long).
 */
export type PathRewrite = (path: string) => string | undefined | null;

/**
 * The longest path a template that names one of the request's segments (or its rest) more than once
 * makes: routes stored before commands bounded the names a template uses had it copy a segment the
 * client chose up to 160 times, and a request of 12 KB sent the origin a path of 1.9 MB, built by the
 * replica. A template naming each once makes no path longer than the request's and its own text.
 */
export const MAX_REWRITTEN_PATH_LENGTH = 32 * 1024;
/** The 414's message. */
export const REWRITTEN_PATH_TOO_LONG = `the route's rewrite_path would make the path longer than ${MAX_REWRITTEN_PATH_LENGTH} characters with this request's path`;

/**
 * Compiles rewrite_path against the route's pattern (no regular expressions):
 * - prefix form: a path starting with `from_prefix` (whole segments) gets `to_prefix` instead;
 * - template form: `:name` segments take the request's segment at the position of the pattern's
 *   `:name`, a trailing `*` takes everything the pattern's trailing `*` matched, other segments are
 *   literal. `/users/:id/*` with template `/v2/accounts/:id/*`: /users/7/posts/1 → /v2/accounts/7/posts/1.
 */
export function compilePathRewrite(rewrite: RewritePath, pathPattern: string): PathRewrite {
  if (rewrite.template === undefined) {
    const from = trimSlash(asRequestPath(rewrite.from_prefix ?? '/'));
    const to = trimSlash(rewrite.to_prefix ?? '/');
    return (path) => {
      if (!path.startsWith(from)) return undefined;
      if (path.length === from.length) return to === '' ? '/' : to;
      if (from !== '' && path.charCodeAt(from.length) !== 47) return undefined;
      return to + path.slice(from.length);
    };
  }
  const patternSegments = pathPattern === '/' ? [] : pathPattern.slice(1).split('/');
  const positionOf = new Map<string, number>();
  patternSegments.forEach((segment, index) => {
    if (segment.startsWith(':')) positionOf.set(segment, index + 1);
  });
  const restFrom = patternSegments.at(-1) === '*' ? patternSegments.length : -1;
  const parts = (rewrite.template === '/' ? [] : rewrite.template.slice(1).split('/')).map(
    (segment): string | number => {
      if (segment === '*') return -1;
      return segment.startsWith(':') ? (positionOf.get(segment) ?? segment) : segment;
    },
  );
  const named = parts.filter((part) => typeof part === 'number');
  const repeats = new Set(named).size < named.length;
  return (path) => {
    const segments = path.split('/');
    if (repeats && rewrittenLength(parts, segments, restFrom) > MAX_REWRITTEN_PATH_LENGTH) return null;
    let out = '';
    for (const part of parts) {
      if (typeof part === 'string') out += `/${part}`;
      else if (part > 0) out += `/${segments[part] ?? ''}`;
      else if (restFrom > 0 && segments.length > restFrom) out += `/${segments.slice(restFrom).join('/')}`;
    }
    return out === '' ? '/' : out;
  };
}

/** The length of the path the template parts make of `segments`, counted before anything is built. */
function rewrittenLength(
  parts: readonly (string | number)[],
  segments: readonly string[],
  restFrom: number,
): number {
  let length = 0;
  for (const part of parts) {
    if (typeof part === 'string') length += 1 + part.length;
    else if (part > 0) length += 1 + (segments[part]?.length ?? 0);
    else if (restFrom > 0) for (let i = restFrom; i < segments.length; i++) length += 1 + segments[i]!.length;
  }
  return length;
}

/**
 * `from_prefix` as request paths reach the rewrite: normalised (`%7e` → `~`, `%c3%a9` → `%C3%A9`),
 * as the route's pattern is; written otherwise, it would never match the paths the pattern matches.
 */
function asRequestPath(prefix: string): string {
  const normalized = normalizePath(prefix, 'keep');
  return normalized.ok ? normalized.path : prefix;
}

function trimSlash(prefix: string): string {
  return prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
}
