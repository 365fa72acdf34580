import type { z } from 'zod';
import type { ApiClient } from './api-client.js';
import type { CliContext } from './context.js';
import { CliError, EXIT } from './exit-codes.js';

/**
 * `history` and `get audit`: entries of a log the admin API pages newest first. `--limit N` shows the
 * N newest (read over as many pages as that takes), `--all` every one, `--cursor C` goes on after the
 * last entry of an earlier run; when older entries exist than shown, stderr says how to see them, and
 * names each tenant whose entries the admin API left out (the audit log of every tenant).
 */

export interface LogEntriesOptions {
  limit: string;
  all?: boolean;
  cursor?: string;
}

export interface LogEntries<Entry> {
  data: Entry[];
  next_cursor: string | null;
}

function mostEntries(options: LogEntriesOptions): number {
  if (options.all) return Number.POSITIVE_INFINITY;
  const limit = Number(options.limit);
  if (!/^\d+$/.test(options.limit) || !Number.isSafeInteger(limit) || limit < 1) {
    throw new CliError(
      EXIT.usage,
      `--limit must be a whole number of entries, at least 1, got ${options.limit}`,
      [{ field: '--limit', issue: 'must be a whole number, at least 1 (--all: every entry)' }],
    );
  }
  return limit;
}

export async function readLogEntries<Entry extends z.ZodType>(
  ctx: CliContext,
  client: ApiClient,
  path: string,
  entry: Entry,
  query: Record<string, string | undefined>,
  options: LogEntriesOptions,
): Promise<LogEntries<z.output<Entry>>> {
  const { items, nextCursor, omittedTenants } = await client.listPart(path, entry, query, {
    max: mostEntries(options),
    ...(options.cursor === undefined ? {} : { cursor: options.cursor }),
  });
  if (nextCursor !== undefined) {
    ctx.stderr(`vantageedge: older entries exist; show them with --cursor ${nextCursor} (or all with --all)`);
  }
  for (const { tenant_id, retry_after_seconds } of omittedTenants) {
    ctx.stderr(
      `vantageedge: entries of tenant ${tenant_id} are left out (its config read budget is spent); read them with --tenant ${tenant_id} in ${retry_after_seconds} s`,
    );
  }
  return { data: items, next_cursor: nextCursor ?? null };
}
