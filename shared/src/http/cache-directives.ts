import { headerList } from './header-values.js';

/** Cache-Control directives (a request's or a response's), lower-case names; one without value maps to ''. */
export function cacheDirectives(value: string | readonly string[] | undefined): Map<string, string> {
  const directives = new Map<string, string>();
  const list = headerList(value);
  if (list === undefined) return directives;
  for (const part of list.split(',')) {
    const at = part.indexOf('=');
    const name = (at < 0 ? part : part.slice(0, at)).trim().toLowerCase();
    if (name === '' || directives.has(name)) continue;
    directives.set(
      name,
      at < 0
        ? ''
        : part
            .slice(at + 1)
            .trim()
            .replace(/^"(.*)"$/, '$1'),
    );
  }
  return directives;
}

/**
 * The largest delta-seconds value the cache counts (RFC 9111 §1.2.2: one too large to represent is
 * taken as 2^31). Freshness, Age and stale windows are bounded by it, so an origin's absurd value can
 * neither overflow a store's expiry nor pass for a small one.
 */
export const MAX_DELTA_SECONDS = 2 ** 31;

/** A delta-seconds value (RFC 9111 §1.2.2): digits only, at most MAX_DELTA_SECONDS; anything else is absent. */
export function deltaSeconds(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d+$/.test(value)) return undefined;
  return Math.min(Number(value), MAX_DELTA_SECONDS);
}
