import type { Request } from 'express';
import type { ExpectedRevisions } from '../commands/context.js';
import { validationFailed } from './errors.js';
import { HEADER_FORMATS } from './header-formats.js';

/** ETag of a resource: its revision, as a strong entity tag. */
export function etag(revision: bigint): string {
  return `"${revision}"`;
}

/** One entity-tag of an If-Match list that HEADER_FORMATS.ifMatch accepted: weak or not, its revision. */
const LISTED_TAG = /(W\/)?"([0-9]+)(?:-redacted)?"/g;

/**
 * If-Match → the revisions the client accepts (RFC 9110 §13.1.1): `*` is any current revision (none to
 * compare: undefined, as without If-Match); a bare `3` is revision 3; a list names the revisions of its
 * strong tags, since a weak tag never matches under the strong comparison If-Match makes. Anything else
 * is not a list of our ETags at all: a 400, so a typo never becomes an unconditional write (a
 * well-formed list naming no current revision is the command's 412).
 */
export function ifMatchRevisions(req: Request): ExpectedRevisions | undefined {
  const header = req.get('if-match');
  if (header === undefined) return undefined;
  if (!HEADER_FORMATS.ifMatch.test(header)) {
    throw validationFailed([
      {
        field: 'if-match',
        issue: 'must be * or the ETag of the resource, e.g. "3" (a list of them: "3", "4")',
      },
    ]);
  }
  if (header === '*') return undefined;
  if (/^[0-9]+$/.test(header)) return [BigInt(header)];
  return [...header.matchAll(LISTED_TAG)]
    .filter(([, weak]) => weak === undefined)
    .map(([, , revision]) => BigInt(revision as string));
}
