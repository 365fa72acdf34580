import { terminalText } from './output.js';

/**
 * How a diff or a plan reads in a terminal: one line per resource, one indented line per field, each
 * with its control characters escaped (names and values are the tenant's).
 */

export interface FieldChange {
  field: string;
  from: unknown;
  to: unknown;
}

export interface Change {
  resource: string;
  id: string | null;
  name: string;
  change: 'added' | 'removed' | 'changed' | 'restored';
  fields: FieldChange[];
}

const SYMBOL: Record<Change['change'], string> = { added: '+', restored: '+', changed: '~', removed: '-' };
const MAX_VALUE = 100;

function shown(value: unknown): string {
  const text = value === undefined ? 'null' : JSON.stringify(value);
  return text.length > MAX_VALUE ? `${text.slice(0, MAX_VALUE - 1)}…` : text;
}

export function formatChanges(changes: readonly Change[]): string {
  const lines: string[] = [];
  for (const change of changes) {
    const note = change.change === 'restored' ? ' (re-created under its old id)' : '';
    const id = change.id === null ? '' : `  [${change.id}]`;
    lines.push(`  ${SYMBOL[change.change]} ${change.resource.replace('_', ' ')} ${change.name}${note}${id}`);
    for (const field of change.fields)
      lines.push(`      ${field.field}: ${shown(field.from)} → ${shown(field.to)}`);
  }
  return lines.map((line) => terminalText(line)).join('\n');
}

export function summary(changes: readonly Change[]): string {
  if (changes.length === 0) return 'No changes.';
  const count = (kind: Change['change']) => changes.filter((change) => change.change === kind).length;
  const parts = [
    [count('added'), 'to add'],
    [count('restored'), 'to restore'],
    [count('changed'), 'to change'],
    [count('removed'), 'to remove'],
  ]
    .filter(([n]) => Number(n) > 0)
    .map(([n, what]) => `${n} ${what}`);
  return `${changes.length} change${changes.length === 1 ? '' : 's'}: ${parts.join(', ')}.`;
}
