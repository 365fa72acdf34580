import { HIDDEN_CHARACTERS, withHiddenCharactersShown } from '@vantageedge/shared/domain/visible-text';
import { Document, Scalar, visit } from 'yaml';

/** `--output table|json|yaml`: tables for people, JSON and YAML (the API's own fields) for scripts. */

export const OUTPUT_FORMATS = ['table', 'json', 'yaml'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export interface Column<Row> {
  header: string;
  value: (row: Row) => unknown;
}

/**
 * The one way human-readable output (tables, explain, plans, messages) shows text that came from the
 * admin API or a tenant: every terminal control and invisible character (HIDDEN_CHARACTERS, which the
 * console shows alike) as a visible `\u001b`-style escape, so a name cannot write the clipboard, clear
 * the screen or disguise itself. `keepNewlines` leaves `\n`
 * for text whose lines the CLI laid out itself (escape the values inside it without). Backslashes are
 * left as they are, so applying it twice changes nothing. JSON and YAML output (`structured`) uses the
 * same characters, as escapes of those formats.
 */
export function terminalText(text: string, options: { keepNewlines?: boolean } = {}): string {
  return withHiddenCharactersShown(text, options);
}

export function cell(value: unknown): string {
  if (value === null || value === undefined || value === '') return '-';
  if (Array.isArray(value)) return value.length === 0 ? '-' : value.map(cell).join(',');
  if (typeof value === 'object') return terminalText(JSON.stringify(value));
  return terminalText(String(value));
}

/**
 * The widest a column is padded to. A longer cell is shown whole and pushes the rest of its own row to
 * the right; the other rows keep their widths. Otherwise one tenant's long cell (an origin's targets:
 * up to 100 URLs of 2048 characters) padded every row of a platform admin's list to its length:
 * hundreds of megabytes of spaces, or no output at all.
 */
const MAX_COLUMN_WIDTH = 120;

/** Left-aligned columns, two spaces apart, header first. */
export function table<Row>(rows: readonly Row[], columns: ReadonlyArray<Column<Row>>): string {
  const grid = [
    columns.map((column) => terminalText(column.header)),
    ...rows.map((row) => columns.map((c) => cell(c.value(row)))),
  ];
  // A loop, not Math.max(...column): a list of a few hundred thousand rows is more arguments than a call takes.
  const widths = columns.map(() => 0);
  for (const line of grid) {
    for (const [index, text] of line.entries()) {
      widths[index] = Math.max(widths[index] ?? 0, Math.min(text.length, MAX_COLUMN_WIDTH));
    }
  }
  return grid
    .map((line) =>
      line
        .map((text, index) => (index === line.length - 1 ? text : text.padEnd(widths[index] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** A string the YAML library must write double-quoted: one with a terminal control but newline. */
const NEEDS_ESCAPES = new RegExp(`(?!\\n)[${HIDDEN_CHARACTERS}]`, 'u');

/**
 * JSON or YAML of the API's values (`-o json|yaml`, `dump`), with every terminal control character
 * written as a `\uXXXX` escape, so the output is safe to print and parses to the same values (a dump
 * stays apply-able). JSON.stringify and the YAML library escape C0 themselves but write DEL, C1
 * (U+009B is CSI on its own), the line separators and the bidi controls raw. In JSON every such
 * character is inside a string; in YAML every string holding one is written double-quoted (the library
 * does so by itself for C0 but tab and newline, DEL and C1; not for tab, U+2028/2029, bidi), where `\uXXXX` is an
 * escape. What is left raw then is only newlines: the document's lines, and line breaks of long
 * double-quoted strings.
 */
export function structured(value: unknown, format: Exclude<OutputFormat, 'table'>): string {
  if (format === 'json') return terminalText(JSON.stringify(value, null, 2), { keepNewlines: true });
  const document = new Document(value);
  visit(document, {
    Scalar(_key, node) {
      if (typeof node.value === 'string' && NEEDS_ESCAPES.test(node.value)) node.type = Scalar.QUOTE_DOUBLE;
    },
  });
  // Without its final newline (stdout adds one); not trimEnd(): a `|+` block keeps its trailing lines.
  return terminalText(document.toString({ lineWidth: 0 }), { keepNewlines: true }).replace(/\n$/, '');
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
