import type { IncomingHttpHeaders } from 'node:http';
import { CACHE_TAG_MAX_LENGTH, CACHE_TAGS_MAX } from '@vantageedge/shared/cache-purge/purge-protocol';
import { headerList, sentHeader } from '@vantageedge/shared/http/header-values';

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The tags an origin gave a response in the policy's tag headers (Surrogate-Key is space-separated,
 * Cache-Tag comma-separated: both separators are read in either), at most CACHE_TAGS_MAX of them, each
 * at most CACHE_TAG_MAX_LENGTH characters, as its origin wrote it (see tagText).
 */
export function responseTags(headers: IncomingHttpHeaders, tagHeaders: readonly string[]): string[] {
  const tags = new Set<string>();
  for (const name of tagHeaders) {
    const value = headerList(sentHeader(headers, name));
    if (value === undefined) continue;
    // ASCII separators only: a byte of a UTF-8 character (0xA0 of `à`) reads as a Unicode space.
    for (const tag of value.split(/[\t ,]+/)) {
      // Bytes first (a character is at most 4 of them), then characters, as the admin API counts a purge's.
      if (tag === '' || tag.length > 4 * CACHE_TAG_MAX_LENGTH) continue;
      const text = tagText(tag);
      if (text.length > CACHE_TAG_MAX_LENGTH) continue;
      tags.add(text);
      if (tags.size === CACHE_TAGS_MAX) return [...tags];
    }
  }
  return [...tags];
}

/**
 * A tag as its origin meant it. Node reads a header value one character per byte; an origin writes a
 * non-ASCII tag (`café`) in UTF-8, and a purge names it by its characters (the admin API's JSON), so
 * the bytes are read as UTF-8 — else the purge would name another tag and drop nothing. Bytes that are
 * no UTF-8 stay one character each (latin1).
 */
function tagText(tag: string): string {
  if (!NON_ASCII.test(tag)) return tag;
  try {
    return strictUtf8.decode(Buffer.from(tag, 'latin1'));
  } catch {
    return tag;
  }
}

const NON_ASCII = /[^\p{ASCII}]/u;
