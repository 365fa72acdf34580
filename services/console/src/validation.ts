import type { z } from 'zod';

/** Field path (`rate_limit.requests_per_second`) → the first issue the schema found there. */
export type FieldIssues = Record<string, string>;

/**
 * Validates a form's body with the control plane's own request schema: the same rules, messages and
 * field names the API's 400 `validation_failed` answers with.
 */
export function validate<S extends z.ZodType>(
  schema: S,
  body: unknown,
): { ok: true; value: z.infer<S> } | { ok: false; issues: FieldIssues } {
  const result = schema.safeParse(body);
  if (result.success) return { ok: true, value: result.data };
  const issues: FieldIssues = {};
  for (const issue of result.error.issues) {
    const field = issue.path.map(String).join('.') || '(body)';
    issues[field] ??= issue.message;
  }
  return { ok: false, issues };
}

/** The issues of `field` and of anything inside it (`rate_limit` collects `rate_limit.*`). */
export function issuesUnder(issues: FieldIssues, field: string): string[] {
  return Object.entries(issues)
    .filter(([path]) => path === field || path.startsWith(`${field}.`))
    .map(([path, issue]) => (path === field ? issue : `${path.slice(field.length + 1)}: ${issue}`));
}
