import type { Request } from 'express';
import { validationFailed } from './errors.js';
import { HEADER_FORMATS } from './header-formats.js';

/** ETag of a resource: its revision, as a strong entity tag. */
export function etag(revision: bigint): string {
  return `"${revision}"`;
}

/**
 * If-Match → the revision the client expects. Accepts `"3"`, `W/"3"` and bare `3`. Anything else is
 * not one of our ETags at all: a 400, so a typo never becomes an unconditional write (a well-formed
 * but stale revision is the command's 412).
 */
export function ifMatchRevision(req: Request): bigint | undefined {
  const header = req.get('if-match');
  if (header === undefined) return undefined;
  if (!HEADER_FORMATS.ifMatch.test(header)) {
    throw validationFailed([{ field: 'if-match', issue: 'must be the ETag of the resource, e.g. "3"' }]);
  }
  return BigInt(header.replace(/\D/g, ''));
}
