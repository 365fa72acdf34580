import type { RewritePath } from '../domain/route-policies.js';
import { normalizePath } from '../routing/normalize-path.js';

/** The path the origin sees for a request path, or undefined when the rewrite leaves it as it is. */
export type PathRewrite = (path: string) => string | undefined;

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
  return (path) => {
    const segments = path.split('/');
    let out = '';
    for (const part of parts) {
      if (typeof part === 'string') out += `/${part}`;
      else if (part > 0) out += `/${segments[part] ?? ''}`;
      else if (restFrom > 0 && segments.length > restFrom) out += `/${segments.slice(restFrom).join('/')}`;
    }
    return out === '' ? '/' : out;
  };
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
