import { normalizePath } from './normalize-path.js';

/** A route's strip_prefix as the gateway applies it: normalised, without a trailing slash, or null. */
export function compileStripPrefix(prefix: string | null): string | null {
  if (prefix === null || prefix === '' || prefix === '/') return null;
  const normalized = normalizePath(prefix.startsWith('/') ? prefix : `/${prefix}`, 'keep');
  if (!normalized.ok) return null;
  return normalized.path.endsWith('/') ? normalized.path.slice(0, -1) : normalized.path;
}

/** The path the origin sees: strip_prefix removed when the path starts with it as whole segments. */
export function strippedPath(path: string, strip: string | null): string {
  if (strip === null || !path.startsWith(strip)) return path;
  if (path.length === strip.length) return '/';
  return path.charCodeAt(strip.length) === 47 ? path.slice(strip.length) : path;
}
