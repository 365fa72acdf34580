import type { Request } from 'express';
import { ApiError } from './errors.js';

/** ETag of a resource: its stream revision, as a strong entity tag. */
export function etag(revision: bigint): string {
  return `"${revision}"`;
}

/**
 * If-Match → the revision the client expects. Accepts `"3"`, `W/"3"` and bare `3`; anything else can
 * never match, so it is a 412 as the RFC says, rather than a silent unconditional write.
 */
export function ifMatchRevision(req: Request): bigint | undefined {
  const header = req.get('if-match');
  if (header === undefined) return undefined;
  const match = /^\s*(?:W\/)?"?(\d{1,19})"?\s*$/.exec(header);
  if (!match?.[1]) {
    throw new ApiError(412, 'precondition_failed', 'If-Match must be the ETag of the resource, e.g. "3"', [
      { field: 'if-match', issue: 'not a revision ETag' },
    ]);
  }
  return BigInt(match[1]);
}
