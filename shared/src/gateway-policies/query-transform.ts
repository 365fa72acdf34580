import type { QueryTransform } from '../domain/route-policies.js';
import { formDecoded } from '../http/form-decoding.js';
import { NamedParameters, parameterKey } from '../http/query-parameter-spellings.js';

/**
 * A value a query transform writes: its text, or a function of the request when it names `${…}`
 * variables (the gateway compiles them; explain fills them in for one request).
 */
export type QueryValue<Context> = string | ((context: Context) => string);

/** A raw query (with its "?", or '') as the route's transform leaves it, for one request's `context`. */
export type CompiledQueryTransform<Context> = (query: string, context: Context) => string;

/**
 * remove, then set (replaces every value, in the place of the first), then add (appends); the values
 * written are URL-encoded. Parameters the transform does not name reach the origin byte for byte: the
 * query is edited as its `&`-separated pieces, never parsed and written again (URLSearchParams would
 * re-encode every other parameter: `%20` as `+`, `/` as `%2F`, a byte that is not UTF-8 as U+FFFD,
 * breaking signed URLs), and a name is decoded only when it may be one the transform names. A name
 * the transform names is matched in every spelling origins read as that name (query-parameter-spellings.ts).
 * What the gateways send the origin, and what their response cache keys on; explain computes it too.
 */
export function compileQueryTransform<Context>(
  transform: QueryTransform | null | undefined,
  compileValue: (text: string) => QueryValue<Context>,
): CompiledQueryTransform<Context> | null {
  if (transform === null || transform === undefined) return null;
  const removed = new Set(transform.remove.map(parameterKey));
  const setNames: string[] = [];
  const setValues: QueryValue<Context>[] = [];
  // A `set` of a removed name is written after the removal, as an append (before the `add`s).
  const appendedNames: string[] = [];
  const appendedValues: QueryValue<Context>[] = [];
  for (const [name, value] of Object.entries(transform.set)) {
    const appended = removed.has(parameterKey(name));
    (appended ? appendedNames : setNames).push(name);
    (appended ? appendedValues : setValues).push(compileValue(value));
  }
  for (const [name, value] of Object.entries(transform.add)) {
    appendedNames.push(name);
    appendedValues.push(compileValue(value));
  }
  if (removed.size + setNames.length + appendedNames.length === 0) return null;
  /** Each name the transform names, by parameterKey: the index of its `set`, or REMOVED. */
  const byKey = new Map<string, number>();
  for (const key of removed) byKey.set(key, REMOVED);
  for (const [index, name] of setNames.entries()) byKey.set(parameterKey(name), index);
  const named = new NamedParameters(byKey);
  const namedIn = namedPieces(named);
  const valueFor = (value: QueryValue<Context>, context: Context) =>
    typeof value === 'string' ? value : value(context);
  return (query, context) => {
    const pieces: string[] = [];
    const written = new Array<boolean>(setNames.length).fill(false);
    const take = (index: number): void => {
      if (index === REMOVED || written[index]) return; // removed, or a later value of a set name
      written[index] = true;
      pieces.push(encoded(setNames[index]!, valueFor(setValues[index]!, context)));
    };
    editPieces(query, namedIn, pieces, take);
    for (let index = 0; index < setNames.length; index++) {
      if (!written[index]) pieces.push(encoded(setNames[index]!, valueFor(setValues[index]!, context)));
    }
    for (let index = 0; index < appendedNames.length; index++) {
      pieces.push(encoded(appendedNames[index]!, valueFor(appendedValues[index]!, context)));
    }
    return pieces.length === 0 ? '' : `?${pieces.join('&')}`;
  };
}

const REMOVED = -1;

/**
 * A raw query (with its "?", or '') without the parameters `names` names, in every spelling origins
 * read as one of them (as a transform's `remove`); every other parameter byte for byte, and the query
 * as it came when it has none of them.
 */
export function compileQueryParameterRemoval(names: readonly string[]): (query: string) => string {
  const namedIn = namedPieces(
    new NamedParameters(new Map(names.map((name) => [parameterKey(name), REMOVED]))),
  );
  let removed = false;
  const drop = (): void => {
    removed = true;
  };
  return (query) => {
    const pieces: string[] = [];
    removed = false;
    editPieces(query, namedIn, pieces, drop);
    if (!removed) return query;
    return pieces.length === 0 ? '' : `?${pieces.join('&')}`;
  };
}

/** The entry a query piece (`name=value`) is named by, if any. */
function namedPieces(named: NamedParameters<number>): (piece: string) => number | undefined {
  return (piece) => named.entryOf(pieceName(piece));
}

/**
 * The `&`-separated pieces of a raw query pushed to `pieces` as they are, but those `namedIn` names
 * (also within a `;`-separated piece), which are handed to `take` instead.
 */
function editPieces(
  query: string,
  namedIn: (piece: string) => number | undefined,
  pieces: string[],
  take: (index: number) => void,
): void {
  const raw = query.startsWith('?') ? query.slice(1) : query;
  if (raw === '') return;
  for (const piece of raw.split('&')) {
    if (piece === '') continue;
    const index = namedIn(piece);
    if (index !== undefined) take(index);
    else if (piece.includes(';')) takeSemicolonPairs(piece, namedIn, pieces, take);
    else pieces.push(piece);
  }
}

/**
 * A piece with `;` in it: Go before 1.17, Python before 3.9.2 and Perl's CGI read each `;`-separated
 * pair as a parameter of its own. Pairs the transform names are taken out (and handled as pieces);
 * the piece is forwarded unchanged when it has none.
 */
function takeSemicolonPairs(
  piece: string,
  namedIn: (pair: string) => number | undefined,
  pieces: string[],
  take: (index: number) => void,
): void {
  const pairs = piece.split(';');
  if (pairs.every((pair) => namedIn(pair) === undefined)) {
    pieces.push(piece);
    return;
  }
  let kept: string[] = [];
  const keep = (): void => {
    if (kept.length > 0) pieces.push(kept.join(';'));
    kept = [];
  };
  for (const pair of pairs) {
    const index = namedIn(pair);
    if (index === undefined) {
      if (pair !== '') kept.push(pair);
      continue;
    }
    keep();
    take(index);
  }
  keep();
}

/** A piece's name as URLSearchParams reads it (`+` a space, percent-decoded); as written when plain. */
function pieceName(piece: string): string {
  const equals = piece.indexOf('=');
  const name = equals < 0 ? piece : piece.slice(0, equals);
  if (!name.includes('%') && !name.includes('+')) return name;
  return formDecoded(name.startsWith('?') ? name.slice(1) : name); // URLSearchParams drops a leading `?`
}

/** `name=value`, encoded as a form (what URLSearchParams writes). */
function encoded(name: string, value: string): string {
  return new URLSearchParams([[name, value]]).toString();
}
