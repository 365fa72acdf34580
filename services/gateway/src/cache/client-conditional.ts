import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { otherSpellingsSent } from '@vantageedge/shared/http/cgi-spellings';
import { entityTagListMatches } from '@vantageedge/shared/http/entity-tags';
import { headerList, singleHeader } from '@vantageedge/shared/http/header-values';
import { parseHttpDate } from '@vantageedge/shared/http/http-date';

/** Headers a 304 carries (RFC 9110 §15.4.5), plus Last-Modified. */
export const NOT_MODIFIED_HEADERS: ReadonlySet<string> = new Set([
  'cache-control',
  'content-location',
  'date',
  'etag',
  'expires',
  'vary',
  'last-modified',
]);

/**
 * Request fields that ask the origin for part of a response (Range, If-Range) or for none unless a
 * precondition holds (If-Match, If-Unmodified-Since). A request that fills an entry every client gets is
 * sent without them, as Varnish sends a miss: the origin's 206 or 412 answers one client's request and
 * could be stored for, or handed to, none. The client gets the whole response instead, as from a HIT:
 * RFC 9110 lets a cache ignore Range (§14.2), If-Range (§13.1.5), If-Match (§13.1.1) and
 * If-Unmodified-Since (§13.1.4), and RFC 9111 §4.3.2 has the latter two not applicable to a cache.
 */
export const ORIGIN_ONLY_REQUEST_FIELDS: readonly string[] = [
  'range',
  'if-range',
  'if-match',
  'if-unmodified-since',
];

/** The conditions the cache answers itself (clientConditional): set aside while it asks the origin. */
export const CLIENT_CONDITIONAL_FIELDS: readonly string[] = ['if-none-match', 'if-modified-since'];

/**
 * Removes `fields` from a request the cache sends for itself, in every spelling CGI-style origins read
 * as them (otherSpellingsSent: `If_None_Match`, PHP's `If.None.Match`): such an origin would otherwise
 * answer the client's condition (a 304, a 412, a 206) to a request that needs the whole response.
 */
export function removeClientFields(headers: OutgoingHttpHeaders, fields: readonly string[]): void {
  const sent = headers as Record<string, string | string[] | undefined>;
  for (const field of fields) {
    for (const spelling of otherSpellingsSent(sent, field)) delete headers[spelling];
    delete headers[field];
  }
}

/** The client's conditional headers: set aside while the cache asks the origin for itself. */
export function clientConditional(request: IncomingHttpHeaders): IncomingHttpHeaders {
  return {
    'if-none-match': request['if-none-match'],
    'if-modified-since': request['if-modified-since'],
  };
}

/** The request carries a condition the cache evaluates (If-None-Match or If-Modified-Since). */
export function isConditional(request: IncomingHttpHeaders): boolean {
  return request['if-none-match'] !== undefined || request['if-modified-since'] !== undefined;
}

/**
 * The client's conditional GET/HEAD is satisfied by a 200 with these fields (RFC 9110 §13.1.2, §13.1.3):
 * If-None-Match is `*` or names its ETag; without If-None-Match, If-Modified-Since is not before its Last-Modified,
 * or its Date when it has no Last-Modified (RFC 9111 §4.3.2).
 */
export function clientHasCurrentCopy(
  fieldOf: (name: string) => string | undefined,
  request: IncomingHttpHeaders,
): boolean {
  const ifNoneMatch = headerList(request['if-none-match']);
  if (ifNoneMatch !== undefined) {
    // `*` matches any current representation, one without an ETag too.
    if (ifNoneMatch.trim() === '*') return true;
    const etag = fieldOf('etag');
    return etag !== undefined && entityTagListMatches(ifNoneMatch, etag);
  }
  const ifModifiedSince = singleHeader(request['if-modified-since']);
  if (ifModifiedSince === undefined) return false;
  // A value that is no HTTP-date is ignored (§13.1.3), as is a stored Last-Modified or Date that is none.
  const since = parseHttpDate(ifModifiedSince);
  const lastModified = fieldOf('last-modified') ?? fieldOf('date');
  const modified = lastModified === undefined ? undefined : parseHttpDate(lastModified);
  return since !== undefined && modified !== undefined && modified <= since;
}
