/**
 * A statement's low-cardinality description for its span (OpenTelemetry's `db.query.summary`): the
 * operation and the table or function it works on, e.g. `SELECT read_models.routes` or
 * `SELECT event_store_append`. Built only from keywords and identifiers outside parentheses, string
 * literals, dollar quotes and comments, so no value of the statement (bound or inlined) ever reaches a
 * span. Only the first statement of a text that holds several is described.
 */
export interface QuerySummary {
  /** `db.operation.name`: the statement's command, upper case. */
  operation: string;
  /** `db.collection.name`: the table read or written, when it is one (not a function). */
  collection?: string;
  /** `db.query.summary`, also the span's name. */
  summary: string;
}

const OPERATIONS = new Set([
  'SELECT',
  'INSERT',
  'UPDATE',
  'DELETE',
  'MERGE',
  'WITH',
  'BEGIN',
  'START',
  'COMMIT',
  'ROLLBACK',
  'SAVEPOINT',
  'RELEASE',
  'SET',
  'RESET',
  'SHOW',
  'LOCK',
  'LISTEN',
  'UNLISTEN',
  'NOTIFY',
  'CALL',
  'VALUES',
  'TRUNCATE',
  'CREATE',
  'ALTER',
  'DROP',
  'ANALYZE',
  'VACUUM',
]);

/** Where a statement's main target follows: the keyword after which its table (or function) is named. */
const TARGET_AFTER: Readonly<Record<string, string>> = {
  SELECT: 'FROM',
  DELETE: 'FROM',
  INSERT: 'INTO',
  MERGE: 'INTO',
  UPDATE: 'UPDATE',
  TRUNCATE: 'TRUNCATE',
  LOCK: 'LOCK',
  CALL: 'CALL',
};

/** PostgreSQL's own limit on an identifier (NAMEDATALEN - 1), twice for a schema-qualified one. */
const MAX_NAME_LENGTH = 127;

interface Token {
  word: string;
  /** The next character after the word (outside whitespace): `(` marks a function call. */
  calls: boolean;
}

export function postgresQuerySummary(text: string): QuerySummary | undefined {
  const tokens = topLevelWords(text);
  const first = tokens[0]?.word.toUpperCase();
  if (first === undefined || !OPERATIONS.has(first)) return undefined;
  let at = 0;
  let operation = first;
  if (first === 'WITH') {
    // The common table expressions are in parentheses: the first command outside them is the statement's.
    at = tokens.findIndex(
      (token, index) => index > 0 && TARGET_AFTER[token.word.toUpperCase()] !== undefined,
    );
    if (at < 0) return { operation, summary: operation };
    operation = tokens[at]?.word.toUpperCase() ?? operation;
  }
  const target = targetOf(tokens, at, operation);
  if (target === undefined) return { operation, summary: operation };
  const summary = `${operation} ${target.name}`;
  return target.calls ? { operation, summary } : { operation, collection: target.name, summary };
}

function targetOf(
  tokens: readonly Token[],
  at: number,
  operation: string,
): { name: string; calls: boolean } | undefined {
  const keyword = TARGET_AFTER[operation];
  if (keyword === undefined) return undefined;
  let index =
    keyword === operation
      ? at
      : tokens.findIndex((token, i) => i > at && token.word.toUpperCase() === keyword);
  if (index < 0) {
    // `select f($1)`: no FROM, the function called is what the statement is for.
    const called = operation === 'SELECT' ? tokens.find((token, i) => i > at && token.calls) : undefined;
    return called && isIdentifier(called.word) ? { name: called.word, calls: true } : undefined;
  }
  index += 1;
  while (['ONLY', 'TABLE'].includes(tokens[index]?.word.toUpperCase() ?? '')) index += 1;
  const named = tokens[index];
  // `from (select …)`: a subquery is no name; nor is anything but an identifier.
  if (named === undefined || !isIdentifier(named.word) || named.word.length > MAX_NAME_LENGTH)
    return undefined;
  // `insert into t (columns)` is no call; `from f($1)` and `call p($1)` are.
  return { name: named.word, calls: named.calls && (operation === 'SELECT' || operation === 'CALL') };
}

function isIdentifier(word: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$/.test(word);
}

/**
 * The words of the first statement that stand outside parentheses, quotes and comments, with quoted
 * identifiers unquoted (`"audit_log"` → audit_log). Parenthesized text, literals and parameters are
 * skipped whole.
 */
function topLevelWords(text: string): Token[] {
  const tokens: Token[] = [];
  let depth = 0;
  let index = 0;
  let pending: Token | undefined;
  while (index < text.length) {
    const char = text[index] as string;
    const next = text[index + 1];
    if (char === '-' && next === '-') {
      const end = text.indexOf('\n', index);
      index = end < 0 ? text.length : end + 1;
    } else if (char === '/' && next === '*') {
      index = blockCommentEnd(text, index);
    } else if (char === "'") {
      // E'…' escape strings take backslash escapes (\' among them).
      const escapes = /[eE]/.test(text[index - 1] ?? '') && !/[A-Za-z0-9_$]/.test(text[index - 2] ?? '');
      index = closingQuote(text, index, "'", escapes);
      pending = undefined;
    } else if (char === '$' && /[A-Za-z_$]/.test(next ?? '')) {
      const tag = /^\$[A-Za-z_0-9]*\$/.exec(text.slice(index))?.[0];
      if (tag === undefined) index += 1;
      else {
        const end = text.indexOf(tag, index + tag.length);
        index = end < 0 ? text.length : end + tag.length;
      }
      pending = undefined;
    } else if (char === '(') {
      if (depth === 0) {
        if (pending) pending.calls = true;
        // Stands for the whole parenthesized text: `from (select …)` names no table.
        tokens.push({ word: '(', calls: false });
      }
      pending = undefined;
      depth += 1;
      index += 1;
    } else if (char === ')') {
      depth = Math.max(0, depth - 1);
      index += 1;
    } else if (char === ';' && depth === 0) {
      break;
    } else if (/\s/.test(char)) {
      index += 1;
    } else {
      const { word, end } = wordAt(text, index);
      if (depth === 0 && word !== undefined) {
        // `schema . table` and `"schema"."table"` join into one name.
        const last = tokens.at(-1);
        if (last && last === pending && (last.word.endsWith('.') || word.startsWith('.'))) last.word += word;
        else {
          pending = { word, calls: false };
          tokens.push(pending);
        }
      } else if (word === undefined) pending = undefined;
      index = end;
    }
  }
  return tokens;
}

/** An identifier (bare, or double-quoted and unquoted) or a dot at `index`; anything else is no word. */
function wordAt(text: string, index: number): { word: string | undefined; end: number } {
  const char = text[index];
  if (char === '"') {
    const end = closingQuote(text, index, '"');
    return { word: text.slice(index + 1, end - 1).replaceAll('""', '"'), end };
  }
  if (char === '.') return { word: '.', end: index + 1 };
  const bare = /^[A-Za-z_][A-Za-z0-9_$]*/.exec(text.slice(index, index + MAX_NAME_LENGTH + 1))?.[0];
  if (bare !== undefined) return { word: bare, end: index + bare.length };
  return { word: undefined, end: index + 1 };
}

/** The index just past the block comment opening at `start`: PostgreSQL's block comments nest. */
function blockCommentEnd(text: string, start: number): number {
  let depth = 0;
  let index = start;
  while (index < text.length) {
    if (text.startsWith('/*', index)) {
      depth += 1;
      index += 2;
    } else if (text.startsWith('*/', index)) {
      depth -= 1;
      index += 2;
      if (depth === 0) return index;
    } else index += 1;
  }
  return text.length;
}

/** The index just past the quote that closes the one at `start` (a doubled quote is part of the text). */
function closingQuote(text: string, start: number, quote: string, backslashEscapes = false): number {
  let index = start + 1;
  while (index < text.length) {
    if (backslashEscapes && text[index] === '\\') index += 2;
    else if (text[index] === quote) {
      if (text[index + 1] !== quote) return index + 1;
      index += 2;
    } else index += 1;
  }
  return text.length;
}
