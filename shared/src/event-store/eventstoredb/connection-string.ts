import { parseConnectionString } from '@eventstore/db-client/dist/Client/parseConnectionString.js';

/**
 * Why the EventStoreDB client would refuse `url` as its connection string, or undefined when it reads
 * it. Checked with settings so a mistake is one line naming EVENTSTOREDB_URL: the client's own error,
 * thrown later, quotes the whole string, password included. This says where and what was expected
 * without quoting any of it.
 */
export function connectionStringProblem(url: string): string | undefined {
  try {
    parseConnectionString(url);
    return undefined;
  } catch (error) {
    const { location, expected } = error as { location?: unknown; expected?: unknown };
    const at =
      Array.isArray(location) && typeof location[0] === 'number' ? ` at character ${location[0]}` : '';
    const wanted = typeof expected === 'string' ? `: expected ${expected}${at}` : at;
    return `is not a connection string the EventStoreDB client reads${wanted} (not shown: it may hold a password)`;
  }
}
