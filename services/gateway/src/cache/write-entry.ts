import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { hasNoContent } from '../http/no-content.js';
import { type CacheEntry, entryHeader } from './cache-entry.js';
import type { ServedOutcome } from './cache-lookup.js';
import { clientHasCurrentCopy, NOT_MODIFIED_HEADERS } from './client-conditional.js';

/** ResponseCache.writeEntry: a cached response written to the client. */
export type WriteEntry = (
  res: ServerResponse,
  entry: CacheEntry,
  outcome: ServedOutcome,
  method: string,
  requestHeaders?: IncomingHttpHeaders,
  beforeHead?: (res: ServerResponse) => void,
) => void;

/**
 * Writes cached responses (a 304 when the client's conditional matches the entry), their Age as of
 * `now`.
 */
export function createEntryWriter(now: () => number): WriteEntry {
  return (res, entry, outcome, method, requestHeaders, beforeHead) => {
    // Only replayable origin headers were stored (storedHeaders); the request's own X-Request-Id,
    // RateLimit etc. already set on `res` stay. Entries of older key formats are unreachable.
    const { headers } = entry;
    const notModified =
      requestHeaders !== undefined &&
      entry.status === 200 &&
      clientHasCurrentCopy((name) => entryHeader(entry, name), requestHeaders);
    res.statusCode = notModified ? 304 : entry.status;
    for (let i = 0; i < headers.length; i++) {
      const header = headers[i]!;
      if (notModified && !NOT_MODIFIED_HEADERS.has(header[0])) continue;
      res.setHeader(header[0], header[1]);
    }
    beforeHead?.(res);
    res.setHeader('Age', Math.max(0, Math.floor((now() - entry.storedAt) / 1000)));
    res.setHeader('X-Cache', outcome);
    // An entry stored with a body its status cannot carry (a 205's, before the proxy dropped it) is
    // served without it.
    const noContent = notModified || hasNoContent(entry.status);
    if (entry.status === 205) res.setHeader('Content-Length', 0);
    else if (!noContent) res.setHeader('Content-Length', entry.body.length);
    // The head written here, not implied by end(): the gateway's response holds it with the body
    // until the end of this turn (see GatewayServerResponse).
    res.writeHead(res.statusCode);
    if (noContent || method === 'HEAD') res.end();
    else res.end(entry.body);
  };
}
