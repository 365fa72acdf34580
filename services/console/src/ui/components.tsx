import { withHiddenCharactersShown } from '@vantageedge/shared/domain/visible-text';
import type { ComponentChildren } from 'preact';
import { ApiProblem } from '../api/client.js';
import { type FieldIssues, issuesUnder } from '../validation.js';

/**
 * A failure as the API stated it. With `onReload`, a 412 (someone else changed the resource since it
 * was read) offers to load the current version: saving again with the old revision is refused forever.
 * A list's buttons (delete, revoke, …) have no edits to drop: `edits` false says nothing of them.
 */
export function ErrorNotice({
  error,
  onReload,
  edits = true,
}: {
  error: unknown;
  onReload?: (() => void) | undefined;
  edits?: boolean;
}) {
  if (error === null || error === undefined) return null;
  if (error instanceof ApiProblem) {
    return (
      <div class="notice error" role="alert">
        <strong>{error.code}</strong>: {withHiddenCharactersShown(error.message)}
        {error.details.length > 0 && (
          <ul>
            {error.details.map((detail) => (
              <li key={`${detail.field}:${detail.issue}`}>
                <code>{withHiddenCharactersShown(detail.field)}</code>{' '}
                {withHiddenCharactersShown(detail.issue)}
              </li>
            ))}
          </ul>
        )}
        {onReload && error.status === 412 && (
          <p>
            Someone else changed it since it was read.{' '}
            <button type="button" class="small" onClick={onReload}>
              Load the current version
            </button>
            {edits && ' (your edits here are dropped)'}
          </p>
        )}
      </div>
    );
  }
  return (
    <div class="notice error" role="alert">
      {withHiddenCharactersShown(error instanceof Error ? error.message : String(error))}
    </div>
  );
}

/**
 * Problems with one field: the schema's issues before sending, the API's details after. Both echo what
 * the viewer entered (field paths under a map, values quoted in messages), hidden characters shown.
 */
export function FieldProblems({ issues, field }: { issues: FieldIssues; field: string }) {
  const found = issuesUnder(issues, field);
  if (found.length === 0) return null;
  return (
    <span class="field-issue" data-field={field}>
      {withHiddenCharactersShown(found.join('; '))}
    </span>
  );
}

export function Field({
  label,
  field,
  issues,
  children,
  hint,
}: {
  label: string;
  field: string;
  issues: FieldIssues;
  children: ComponentChildren;
  hint?: string;
}) {
  return (
    // biome-ignore lint/a11y/noLabelWithoutControl: the control is the children, inside the label
    <label class={`field${issuesUnder(issues, field).length > 0 ? ' invalid' : ''}`}>
      <span class="label">{label}</span>
      {children}
      {hint && <span class="hint">{hint}</span>}
      <FieldProblems issues={issues} field={field} />
    </label>
  );
}

export function Loading({ what }: { what: string }) {
  return <p class="muted">Loading {what}…</p>;
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <p class="muted empty">{children}</p>;
}

export function Time({ iso }: { iso: string | null }) {
  if (!iso) return <span class="muted">—</span>;
  return (
    <time dateTime={iso} title={iso}>
      {new Date(iso).toLocaleString()}
    </time>
  );
}

/** API details (field → issue) merged into form issues, so a 400 shows next to its field. */
export function issuesFromProblem(error: unknown): FieldIssues {
  if (!(error instanceof ApiProblem)) return {};
  const issues: FieldIssues = {};
  for (const detail of error.details) issues[detail.field] ??= detail.issue;
  return issues;
}
