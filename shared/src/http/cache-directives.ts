import { headerList } from './header-values.js';

/** Cache-Control directives (a request's or a response's), lower-case names; one without value maps to ''. */
export function cacheDirectives(value: string | readonly string[] | undefined): Map<string, string> {
  const directives = new Map<string, string>();
  for (const [name, directiveValue] of directiveList(value))
    if (!directives.has(name)) directives.set(name, directiveValue);
  return directives;
}

/** Every directive of a Cache-Control field as [lower-case name, value], repeats included, in order. */
function directiveList(value: string | readonly string[] | undefined): Array<[string, string]> {
  const list = headerList(value);
  if (list === undefined) return [];
  const directives: Array<[string, string]> = [];
  for (const part of list.split(',')) {
    const at = part.indexOf('=');
    const name = (at < 0 ? part : part.slice(0, at)).trim().toLowerCase();
    if (name === '') continue;
    directives.push([
      name,
      at < 0
        ? ''
        : part
            .slice(at + 1)
            .trim()
            .replace(/^"(.*)"$/, '$1'),
    ]);
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

/**
 * The freshness lifetime a response's Cache-Control gives a shared cache (RFC 9111 §4.2.1): s-maxage,
 * else max-age, in seconds; undefined when it has neither. `invalid` when the directive that counts is
 * no delta-seconds (`max-age=1.5`, `abc`, `-1`, no value) or comes twice with different values: §4.2.1
 * encourages a cache to take a response with invalid freshness information as stale, where reading the
 * digits it starts with, or the last of two values, would keep it fresh for a time the origin never said.
 */
export function statedMaxAge(
  cacheControl: string | readonly string[] | undefined,
): number | 'invalid' | undefined {
  const directives = directiveList(cacheControl);
  for (const wanted of ['s-maxage', 'max-age']) {
    const values = directives.filter(([name]) => name === wanted).map(([, value]) => value);
    if (values.length === 0) continue;
    if (values.some((value) => value !== values[0])) return 'invalid';
    return deltaSeconds(values[0]) ?? 'invalid';
  }
  return undefined;
}
