import { z } from 'zod';

/**
 * Cursor pagination over a strictly increasing (or, for the audit log, decreasing) bigint sort key.
 * The cursor is opaque to clients: base64url of the key of the last row returned.
 */

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 200;

export const limitParam = z.coerce
  .number({ message: 'must be an integer' })
  .int('must be an integer')
  .min(1, 'must be at least 1')
  .max(MAX_PAGE_SIZE, `must be at most ${MAX_PAGE_SIZE}`)
  .default(DEFAULT_PAGE_SIZE);

export const cursorParam = z
  .string()
  .transform((cursor, context) => {
    const key = Buffer.from(cursor, 'base64url').toString('utf8');
    if (!/^\d{1,19}$/.test(key)) {
      context.addIssue({ code: 'custom', message: 'is not a cursor returned by this API' });
      return z.NEVER;
    }
    return BigInt(key);
  })
  .optional();

export function encodeCursor(key: bigint): string {
  return Buffer.from(key.toString(), 'utf8').toString('base64url');
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
