/** One entity-tag of a list (RFC 9110 §8.8.3): an opaque tag may hold a comma, so the list is not split on them. */
const ENTITY_TAG = /\s*(?:W\/)?("[^"]*")\s*(?:,|$)/y;

/**
 * An If-None-Match value (`*` or a list of entity-tags) matches `etag` under the weak comparison
 * (RFC 9110 §8.8.3.2, §13.1.2): `W/"3"` and `"3"` are the same tag there. A value that is no list of
 * tags matches nothing.
 */
export function entityTagListMatches(list: string, etag: string): boolean {
  if (list.trim() === '*') return true;
  const opaque = etag.replace(/^W\//, '');
  ENTITY_TAG.lastIndex = 0;
  while (ENTITY_TAG.lastIndex < list.length) {
    const tag = ENTITY_TAG.exec(list);
    if (tag === null) return false;
    if (tag[1] === opaque) return true;
  }
  return false;
}

/**
 * Two entity-tags are the same under the weak comparison (RFC 9110 §8.8.3.2): their opaque tags are,
 * whether either is weak.
 */
export function sameOpaqueTag(a: string, b: string): boolean {
  return opaqueTag(a) === opaqueTag(b);
}

function opaqueTag(etag: string): string {
  return etag.trim().replace(/^W\//, '');
}
