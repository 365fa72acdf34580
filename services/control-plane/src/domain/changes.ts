import { isDeepStrictEqual } from 'node:util';

/**
 * Applies a partial update (top-level fields replace whole values) and names the fields whose value
 * really changed. Key order is ignored: events come back from jsonb with keys reordered.
 */
export function applyChanges<State extends object>(
  current: State,
  changes: NoInfer<{ [Field in keyof State]?: State[Field] | undefined }>,
): { next: State; changedFields: string[] } {
  const next: Record<string, unknown> = { ...(current as Record<string, unknown>) };
  const changedFields: string[] = [];
  for (const [field, value] of Object.entries(changes)) {
    if (value === undefined) continue;
    if (!isDeepStrictEqual(next[field], value)) {
      next[field] = value;
      changedFields.push(field);
    }
  }
  return { next: next as State, changedFields };
}
