import type { IncomingHttpHeaders } from 'node:http';
import { CACHE_TAG_MAX_LENGTH, CACHE_TAGS_MAX } from '@vantageedge/shared/cache-purge/purge-protocol';
import { headerList, sentHeader } from '@vantageedge/shared/http/header-values';

/**
 * The tags an origin gave a response in the policy's tag headers (Surrogate-Key is space-separated,
 * Cache-Tag comma-separated: both separators are read in either), at most CACHE_TAGS_MAX of them.
 */
export function responseTags(headers: IncomingHttpHeaders, tagHeaders: readonly string[]): string[] {
  const tags = new Set<string>();
  for (const name of tagHeaders) {
    const value = headerList(sentHeader(headers, name));
    if (value === undefined) continue;
    for (const tag of value.split(/[\s,]+/)) {
      if (tag === '' || tag.length > CACHE_TAG_MAX_LENGTH) continue;
      tags.add(tag);
      if (tags.size === CACHE_TAGS_MAX) return [...tags];
    }
  }
  return [...tags];
}
