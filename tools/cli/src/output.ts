import { stringify } from 'yaml';

/** `--output table|json|yaml`: tables for people, JSON and YAML (the API's own fields) for scripts. */

export const OUTPUT_FORMATS = ['table', 'json', 'yaml'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export interface Column<Row> {
  header: string;
  value: (row: Row) => unknown;
}

/**
 * Characters a terminal acts on instead of showing: C0 controls (ESC starts CSI/OSC sequences, BEL ends
 * them, CR overwrites a line), DEL, C1 controls (U+009B is CSI on its own), the line and paragraph
 * separators, and the bidi embedding/override/isolate controls (they reorder what is shown).
 */
const TERMINAL_CONTROLS = '\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069';
const CONTROLS = new RegExp(`[${TERMINAL_CONTROLS}]`, 'g');
const CONTROLS_BUT_NEWLINE = new RegExp(`(?!\\n)[${TERMINAL_CONTROLS}]`, 'g');

/**
 * The one way human-readable output (tables, explain, plans, messages) shows text that came from the
 * admin API or a tenant: every terminal control character as a visible `\u001b`-style escape, so a
 * name cannot write the clipboard, clear the screen or disguise itself. `keepNewlines` leaves `\n`
 * for text whose lines the CLI laid out itself (escape the values inside it without). Backslashes are
 * left as they are, so applying it twice changes nothing. JSON and YAML output does not use it.
 */
export function terminalText(text: string, options: { keepNewlines?: boolean } = {}): string {
  return text.replace(
    options.keepNewlines ? CONTROLS_BUT_NEWLINE : CONTROLS,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

export function cell(value: unknown): string {
  if (value === null || value === undefined || value === '') return '-';
  if (Array.isArray(value)) return value.length === 0 ? '-' : value.map(cell).join(',');
  if (typeof value === 'object') return terminalText(JSON.stringify(value));
  return terminalText(String(value));
}

/** Left-aligned columns, two spaces apart, header first. */
export function table<Row>(rows: readonly Row[], columns: ReadonlyArray<Column<Row>>): string {
  const grid = [
    columns.map((column) => terminalText(column.header)),
    ...rows.map((row) => columns.map((c) => cell(c.value(row)))),
  ];
  const widths = columns.map((_, index) => Math.max(...grid.map((line) => (line[index] ?? '').length)));
  return grid
    .map((line) =>
      line
        .map((text, index) => (index === line.length - 1 ? text : text.padEnd(widths[index] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export function structured(value: unknown, format: Exclude<OutputFormat, 'table'>): string {
  return format === 'json' ? JSON.stringify(value, null, 2) : stringify(value, { lineWidth: 0 }).trimEnd();
}

/** Rows as a table, or the raw value as JSON/YAML. */
export function renderRows<Row>(
  rows: readonly Row[],
  columns: ReadonlyArray<Column<Row>>,
  format: OutputFormat,
  raw: unknown = rows,
): string {
  return format === 'table' ? table(rows, columns) : structured(raw, format);
}

/** A value as JSON/YAML, or as the human text `human` gives (its lines, with every control escaped). */
export function render(value: unknown, format: OutputFormat, human: () => string): string {
  return format === 'table' ? terminalText(human(), { keepNewlines: true }) : structured(value, format);
}
