import type { z } from 'zod';
import { type ErrorDetail, validationFailed } from './errors.js';

/** zod issues → the API's `details`: one entry per offending field (dotted path), unknown fields named. */
export function issuesToDetails(issues: readonly z.core.$ZodIssue[]): ErrorDetail[] {
  const details: ErrorDetail[] = [];
  for (const issue of issues) {
    const path = issue.path.map(String);
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys)
        details.push({ field: [...path, key].join('.'), issue: 'is not a known field' });
      continue;
    }
    details.push({ field: path.length > 0 ? path.join('.') : 'body', issue: issue.message });
  }
  return details;
}

/** Parses a request body; 400 validation_failed naming every bad field otherwise. */
export function parseBody<Schema extends z.ZodType>(schema: Schema, body: unknown): z.infer<Schema> {
  const result = schema.safeParse(body);
  if (!result.success) throw validationFailed(issuesToDetails(result.error.issues));
  return result.data;
}
