import { Document, Scalar, visit } from 'yaml';

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
 * separators, every bidi control (Unicode's Bidi_Control: the embedding/override/isolate controls
 * and the invisible ALM, LRM and RLM marks; they reorder what is shown), and the other invisible format
 * characters (Unicode's Cf: soft hyphen, zero-width space and joiners, word joiner, invisible operators,
 * BOM, …; beyond the Basic Multilingual Plane the tag characters U+E0001 and U+E0020–E007F, which
 * terminals draw as nothing, and the format controls of a few scripts) and the rest of what Unicode
 * calls Default_Ignorable (the Hangul fillers, variation selectors, the combining grapheme joiner,
 * Mongolian variation selectors, Khmer inherent vowels and the code points reserved as ignorable),
 * which make one name look like another: `Acme\u3164` reads as `Acme`.
 */
const TERMINAL_CONTROLS =
  '\\u0000-\\u001f\\u007f-\\u009f\\u00ad\\u034f\\u0600-\\u0605\\u061c\\u06dd\\u070f\\u0890\\u0891\\u08e2' +
  '\\u115f\\u1160\\u17b4\\u17b5\\u180b-\\u180f\\u200b-\\u200f\\u2028-\\u202e\\u2060-\\u206f\\u3164' +
  '\\ufe00-\\ufe0f\\ufeff\\uffa0\\ufff0-\\ufffb' +
  '\\u{110bd}\\u{110cd}\\u{13430}-\\u{1343f}\\u{1bca0}-\\u{1bca3}\\u{1d173}-\\u{1d17a}\\u{e0000}-\\u{e0fff}';
// `u`: a character beyond the BMP is one match (its surrogate pair), not two halves that match nothing.
const CONTROLS = new RegExp(`[${TERMINAL_CONTROLS}]`, 'gu');
const CONTROLS_BUT_NEWLINE = new RegExp(`(?!\\n)[${TERMINAL_CONTROLS}]`, 'gu');

/** `\u001b`; a character beyond the BMP as its surrogate pair (`\udb40\udc41`), as JSON and YAML write it. */
function visibleEscape(char: string): string {
  let escaped = '';
  for (let index = 0; index < char.length; index++) {
    escaped += `\\u${char.charCodeAt(index).toString(16).padStart(4, '0')}`;
  }
  return escaped;
}

/**
 * The one way human-readable output (tables, explain, plans, messages) shows text that came from the
 * admin API or a tenant: every terminal control character as a visible `\u001b`-style escape, so a
 * name cannot write the clipboard, clear the screen or disguise itself. `keepNewlines` leaves `\n`
 * for text whose lines the CLI laid out itself (escape the values inside it without). Backslashes are
 * left as they are, so applying it twice changes nothing. JSON and YAML output (`structured`) uses the
 * same characters, as escapes of those formats.
 */
export function terminalText(text: string, options: { keepNewlines?: boolean } = {}): string {
  return text.replace(options.keepNewlines ? CONTROLS_BUT_NEWLINE : CONTROLS, visibleEscape);
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
const NEEDS_ESCAPES = new RegExp(`(?!\\n)[${TERMINAL_CONTROLS}]`, 'u');

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
