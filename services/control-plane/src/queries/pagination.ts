import { z } from 'zod';
import { HEADER_FORMATS } from '../http/header-formats.js';

/**
 * Cursor pagination over a strictly increasing (or, for the audit log, decreasing) bigint sort key.
 * The cursor is the key (an event position) of the last row returned; clients pass next_cursor back
 * as they got it.
 */

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 200;

/** Decimal digits only (read as JavaScript reads a number, `0x10`, `1e1` or ` +5` would be pages too). */
export const limitParam = z
  .string({ message: 'must be an integer' })
  .regex(/^-?[0-9]+$/, 'must be an integer')
  .pipe(
    z.coerce
      .number<string>()
      .int('must be an integer')
      .min(1, 'must be at least 1')
      .max(MAX_PAGE_SIZE, `must be at most ${MAX_PAGE_SIZE}`),
  )
  .default(DEFAULT_PAGE_SIZE);

export const cursorParam = z
  .string()
  .regex(HEADER_FORMATS.cursor, 'is not a cursor returned by this API')
  .transform((cursor) => BigInt(cursor))
  .optional();

export function encodeCursor(key: bigint): string {
  return key.toString();
}

export interface Page<Row> {
  data: Row[];
  next_cursor: string | null;
}

/** `rows` were fetched with limit + 1: the extra row only says whether there is a next page. */
export function toPage<Row, Item>(
  rows: readonly Row[],
  limit: number,
  keyOf: (row: Row) => bigint,
  present: (row: Row) => Item,
): Page<Item> {
  const pageRows = rows.slice(0, limit);
  const last = pageRows.at(-1);
  return {
    data: pageRows.map(present),
    next_cursor: rows.length > limit && last !== undefined ? encodeCursor(keyOf(last)) : null,
  };
}
