import { format } from 'node:util';
import { parseConnectionString } from '@eventstore/db-client/dist/Client/parseConnectionString.js';

/** The message the client warns with when it ignores an option (then quotes the string, marking the key). */
const UNKNOWN_OPTION_WARNING = 'Unknown option key';
/** The client's marker line under the quoted string: spaces, then `^` under the part it means. */
const MARKER_LINE = /^( *)\^+$/;

/**
 * Why the EventStoreDB client would refuse `url` as its connection string, or undefined when it reads
 * it. Checked with settings so a mistake is one line naming EVENTSTOREDB_URL: the client's own error,
 * thrown later, quotes the whole string, password included. This says where and what was expected
 * without quoting any of it. An option the client does not know is refused too: the client would
 * ignore it (a misspelt `tls=false` is a connection that never works), after printing the whole string.
 */
export function connectionStringProblem(url: string): string | undefined {
  const warnings: string[] = [];
  try {
    withClientWarnings(
      (text) => warnings.push(text),
      () => parseConnectionString(url),
    );
  } catch (error) {
    const { location, expected } = error as { location?: unknown; expected?: unknown };
    const at =
      Array.isArray(location) && typeof location[0] === 'number' ? ` at character ${location[0]}` : '';
    const wanted = typeof expected === 'string' ? `: expected ${expected}${at}` : at;
    return `is not a connection string the EventStoreDB client reads${wanted} (not shown: it may hold a password)`;
  }
  const unknown = warnings.find((text) => text.startsWith(UNKNOWN_OPTION_WARNING));
  if (unknown === undefined) return undefined;
  return `has an option the EventStoreDB client does not know, which it would ignore${markedAt(unknown)} (not shown: it may hold a password)`;
}

/**
 * Runs `use`, which reads `url` with the EventStoreDB client (EventStoreDBClient.connectionString):
 * the client's warnings about it (an option it ignores or does not support) quote the whole string,
 * password included, on the console; they are written without it.
 */
export function withoutQuotedConnectionString<T>(url: string, use: () => T): T {
  const quoted = url.trim().replace(/\/+$/, '');
  const warn = console.warn;
  return withClientWarnings((text) => warn.call(console, withoutQuote(text, quoted)), use);
}

/** Runs `use` (synchronous) with console.warn's output handed to `warned` as text. */
function withClientWarnings<T>(warned: (text: string) => void, use: () => T): T {
  const warn = console.warn;
  console.warn = (...args: unknown[]) => warned(format(...args));
  try {
    return use();
  } finally {
    console.warn = warn;
  }
}

/** A client warning with the quoted connection string and its marker line replaced by where it marks. */
function withoutQuote(text: string, quoted: string): string {
  const lines = text.split('\n');
  const kept = lines.filter((line) => !line.includes(quoted) && !MARKER_LINE.test(line));
  return `${kept.join('\n')} (EVENTSTOREDB_URL${markedAt(text)}; not shown: it may hold a password)`;
}

/** ` at character N` for the client's marker line in `text`, if it has one. */
function markedAt(text: string): string {
  for (const line of text.split('\n')) {
    const marker = MARKER_LINE.exec(line);
    if (marker !== null) return ` at character ${marker[1]!.length}`;
  }
  return '';
}
