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
/** What is shown of the common part before the first difference, when that is past MAX_VALUE. */
const CONTEXT = 20;

/** `text` from `start`, at most MAX_VALUE characters, with `…` where something is left out. */
function excerpt(text: string, start: number): string {
  const before = start > 0 ? '…' : '';
  const rest = text.slice(start);
  const room = MAX_VALUE - before.length;
  return rest.length > room ? `${before}${rest.slice(0, room - 1)}…` : `${before}${rest}`;
}

/**
 * Both sides of a field change, cut from the same place: the start, or just before where they first
 * differ when that is further on (else two long values differing late would read the same).
 */
function shownPair(from: unknown, to: unknown): [string, string] {
  const texts = [from, to].map((value) => (value === undefined ? 'null' : JSON.stringify(value)));
  const [a = '', b = ''] = texts;
  let first = 0;
  while (first < a.length && first < b.length && a[first] === b[first]) first++;
  const start = first < MAX_VALUE - 1 ? 0 : first - CONTEXT;
  return [excerpt(a, start), excerpt(b, start)];
}

export function formatChanges(changes: readonly Change[]): string {
  const lines: string[] = [];
  for (const change of changes) {
    const note = change.change === 'restored' ? ' (re-created under its old id)' : '';
    const id = change.id === null ? '' : `  [${change.id}]`;
    lines.push(`  ${SYMBOL[change.change]} ${change.resource.replace('_', ' ')} ${change.name}${note}${id}`);
    for (const field of change.fields) {
      const [from, to] = shownPair(field.from, field.to);
      lines.push(`      ${field.field}: ${from} → ${to}`);
    }
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
