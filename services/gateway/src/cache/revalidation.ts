import type { IncomingHttpHeaders } from 'node:http';
import { sameOpaqueTag } from '@vantageedge/shared/http/entity-tags';
import { singleHeader } from '@vantageedge/shared/http/header-values';
import type { Counter } from 'prom-client';
import { varyNames } from '../http/vary-fields.js';
import { type CacheEntry, entryHeader } from './cache-entry.js';
import type { CacheFill } from './cache-fill.js';
import { declaredLength, revalidatedStorageDecision, storedHeaders } from './cacheability.js';
import type { FillCommit } from './fill-commit.js';
import type { FillResponse } from './fill-response.js';

export interface RevalidationOptions {
  revalidations: Counter<'result'>;
  fillCommit: FillCommit;
  fillResponse: FillResponse;
  now: () => number;
}

/** ResponseCache.revalidated: the origin answered a revalidation with 304. */
export type Revalidated = (fill: CacheFill, headers: IncomingHttpHeaders) => CacheEntry;

/**
 * A stale entry the origin confirmed (304): its headers updated from the 304, its freshness
 * recomputed, stored again unless the new headers forbid it, and handed to the followers.
 */
export function createRevalidated(options: RevalidationOptions): Revalidated {
  const { revalidations, now } = options;
  const { entryOf, commitEntry } = options.fillCommit;
  const { refuse } = options.fillResponse;
  return (fill, headers) => {
    const stale = fill.revalidating!;
    fill.revalidating = null;
    revalidations.labels({ result: 'not_modified' }).inc();
    if (!selectsStored(stale, headers)) {
      // The origin's current representation is another: this request gets the stored response as it
      // was (the origin did find the entry's own tag current), and the stored entry stays unchanged.
      refuse(fill, 'not_modified_other_etag');
      return { ...stale, storedAt: now() };
    }
    // A 304 without a Vary of its own keeps the stored one, and the Origin the gateway had merged into it.
    if (headers.vary === undefined)
      fill.varyOriginByGateway =
        varyNames(entryHeader(stale, 'vary'), 'origin') && !stale.varyOn.includes('origin');
    const merged = mergeNotModified(stale, headers);
    const decision = revalidatedStorageDecision(fill.policy, stale.status, merged, headers, fill);
    if ('notStored' in decision) {
      // The updated response may not be kept, or not shared from this caller's 304: it answers this
      // request once, and the stored entry is left as it was.
      refuse(fill, decision.notStored);
      return { ...stale, headers: storedHeaders(merged, fill.policy.cacheSetCookie), storedAt: now() };
    }
    const entry = entryOf(fill, stale.status, merged, stale.body, decision);
    void commitEntry(fill, entry).catch(() => {});
    return entry;
  };
}

/**
 * The 304 selects the stored response for update (RFC 9111 §4.3.4): it names no ETag, or the entry's
 * entity tag. Weakness aside: a compressing origin (nginx's gzip) weakens the ETag of the 200s it
 * compresses, not of its 304s, which have no body to compress. A stored response without an ETag was
 * revalidated with If-Modified-Since: the 304's tag is that of the unmodified representation it holds.
 */
function selectsStored(entry: CacheEntry, notModified: IncomingHttpHeaders): boolean {
  const stored = entryHeader(entry, 'etag');
  if (notModified.etag === undefined || stored === undefined) return true;
  const confirmed = singleHeader(notModified.etag);
  return confirmed !== undefined && sameOpaqueTag(confirmed, stored);
}

/**
 * A stored entry's headers updated from the origin's 304 (RFC 9111 §3.2): every field of the 304
 * replaces the stored one, except those describing the stored body's bytes, Content-Length and
 * Content-Encoding (the stored body is still the body, in the coding it was stored in: §3.2's example
 * of a field a cache may keep, and a weak ETag matches an origin's compressed and plain representations
 * alike).
 */
function mergeNotModified(entry: CacheEntry, notModified: IncomingHttpHeaders): IncomingHttpHeaders {
  const merged: Record<string, string | string[]> = {};
  for (const [name, value] of entry.headers)
    merged[name] = Array.isArray(value) ? [...value] : (value as string);
  for (const [name, value] of Object.entries(notModified)) {
    if (value === undefined || DESCRIBES_STORED_BODY.has(name)) continue;
    merged[name] = value;
  }
  return merged as IncomingHttpHeaders;
}

const DESCRIBES_STORED_BODY: ReadonlySet<string> = new Set(['content-length', 'content-encoding']);

/**
 * The request headers of a conditional request that revalidates `entry` (RFC 9111 §4.3.1): its ETag as
 * If-None-Match, else its Last-Modified as If-Modified-Since.
 */
export function revalidationHeaders(entry: CacheEntry): Record<string, string> {
  const etag = entryHeader(entry, 'etag');
  if (etag !== undefined) return { 'if-none-match': etag };
  const lastModified = entryHeader(entry, 'last-modified');
  return lastModified === undefined ? {} : { 'if-modified-since': lastModified };
}

/**
 * The origin's 200 to a HEAD describes the stored response (RFC 9111 §4.3.5): each validator it carries
 * (ETag, Last-Modified) has the stored value, and its Content-Length, when it has one, is the stored
 * body's length. Otherwise the resource changed since it was stored.
 */
export function headDescribes(entry: CacheEntry, head: IncomingHttpHeaders): boolean {
  for (const name of VALIDATORS) {
    const value = head[name];
    if (value !== undefined && value !== entryHeader(entry, name)) return false;
  }
  const length = declaredLength(head);
  return length === undefined || length === entry.body.length;
}

const VALIDATORS = ['etag', 'last-modified'] as const;
