import { stringify } from 'yaml';

/** `--output table|json|yaml`: tables for people, JSON and YAML (the API's own fields) for scripts. */

export const OUTPUT_FORMATS = ['table', 'json', 'yaml'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export interface Column<Row> {
  header: string;
  value: (row: Row) => unknown;
}

export function cell(value: unknown): string {
  if (value === null || value === undefined || value === '') return '-';
  if (Array.isArray(value)) return value.length === 0 ? '-' : value.map(cell).join(',');
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/** Left-aligned columns, two spaces apart, header first. */
export function table<Row>(rows: readonly Row[], columns: ReadonlyArray<Column<Row>>): string {
  const grid = [
    columns.map((column) => column.header),
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

/** A value as JSON/YAML, or as the human text `human` gives. */
export function render(value: unknown, format: OutputFormat, human: () => string): string {
  return format === 'table' ? human() : structured(value, format);
}
