import type { z } from 'zod';
import { validationFailed } from '../http/errors.js';

/** Parses query parameters with a strict zod shape; any problem → 400 validation_failed naming the field. */
export function parseQuery<Schema extends z.ZodType>(schema: Schema, query: unknown): z.infer<Schema> {
  const result = schema.safeParse(query);
  if (result.success) return result.data;
  throw validationFailed(
    result.error.issues.map((issue) => {
      const unknownKeys = issue.code === 'unrecognized_keys' ? issue.keys : [];
      return unknownKeys.length > 0
        ? { field: unknownKeys.join(','), issue: 'is not a known query parameter' }
        : { field: issue.path.map(String).join('.') || 'query', issue: issue.message };
    }),
  );
}
