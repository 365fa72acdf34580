import { answeredIssueMessage } from '@vantageedge/shared/domain/credential-headers';
import type { z } from 'zod';
import { type ErrorDetail, listedDetails, MAX_ERROR_DETAILS, validationFailed } from './errors.js';

/**
 * zod issues → the API's `details`: one entry per offending field (dotted path), unknown fields named,
 * a credential's value never quoted; past MAX_ERROR_DETAILS the rest are only counted (a document can
 * hold hundreds of thousands).
 */
export function issuesToDetails(issues: readonly z.core.$ZodIssue[]): ErrorDetail[] {
  const details: ErrorDetail[] = [];
  let unlisted = 0;
  const fieldOf = (path: readonly PropertyKey[]) => (path.length > 0 ? path.map(String).join('.') : 'body');
  for (const issue of issues) {
    const problems = issue.code === 'unrecognized_keys' ? issue.keys.length : 1;
    const room = MAX_ERROR_DETAILS - details.length;
    unlisted += Math.max(0, problems - room);
    if (room <= 0) continue;
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys.slice(0, room))
        details.push({ field: fieldOf([...issue.path, key]), issue: 'is not a known field' });
    } else {
      const params = issue.code === 'custom' ? issue.params : undefined;
      details.push({ field: fieldOf(issue.path), issue: answeredIssueMessage({ ...issue, params }) });
    }
  }
  return listedDetails(details, unlisted);
}

/** Parses a request body; 400 validation_failed naming every bad field otherwise. */
export function parseBody<Schema extends z.ZodType>(schema: Schema, body: unknown): z.infer<Schema> {
  const result = schema.safeParse(body);
  if (!result.success) throw validationFailed(issuesToDetails(result.error.issues));
  return result.data;
}
