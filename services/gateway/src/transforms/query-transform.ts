import type { QueryTransform } from '@vantageedge/shared/domain/route-policies';
import { NamedParameters, parameterKey } from '@vantageedge/shared/http/query-parameter-spellings';
import type { GatewayExchange } from '../pipeline/exchange.js';
import { compileValueTemplate, templateValue, type ValueTemplate } from './value-template.js';

/** The new raw query (with its "?", or '') for a request; compiled once per route. */
export type CompiledQueryTransform = (exchange: GatewayExchange) => string;

/**
 * remove, then set (replaces every value, in the place of the first), then add (appends); the values
 * written are URL-encoded. Parameters the transform does not name reach the origin byte for byte: the
 * query is edited as its `&`-separated pieces, never parsed and written again (URLSearchParams would
 * re-encode every other parameter: `%20` as `+`, `/` as `%2F`, a byte that is not UTF-8 as U+FFFD,
 * breaking signed URLs), and a name is decoded only when it may be one the transform names. A name
 * the transform names is matched in every spelling origins read as that name (shared/src/http/query-parameter-spellings.ts).
 */
export function compileQueryTransform(
  transform: QueryTransform | null | undefined,
): CompiledQueryTransform | null {
  if (transform === null || transform === undefined) return null;
  const removed = new Set(transform.remove.map(parameterKey));
  const setNames: string[] = [];
  const setValues: ValueTemplate[] = [];
  // A `set` of a removed name is written after the removal, as an append (before the `add`s).
  const appendedNames: string[] = [];
  const appendedValues: ValueTemplate[] = [];
  for (const [name, value] of Object.entries(transform.set)) {
    const appended = removed.has(parameterKey(name));
    (appended ? appendedNames : setNames).push(name);
    (appended ? appendedValues : setValues).push(compileValueTemplate(value));
  }
  for (const [name, value] of Object.entries(transform.add)) {
    appendedNames.push(name);
    appendedValues.push(compileValueTemplate(value));
  }
  if (removed.size + setNames.length + appendedNames.length === 0) return null;
  /** Each name the transform names, by parameterKey: the index of its `set`, or REMOVED. */
  const byKey = new Map<string, number>();
  for (const key of removed) byKey.set(key, REMOVED);
  for (const [index, name] of setNames.entries()) byKey.set(parameterKey(name), index);
  const named = new NamedParameters(byKey);
  const namedIn = namedPieces(named);
  return (exchange) => {
    const pieces: string[] = [];
    const written = new Array<boolean>(setNames.length).fill(false);
    const take = (index: number): void => {
      if (index === REMOVED || written[index]) return; // removed, or a later value of a set name
      written[index] = true;
      pieces.push(encoded(setNames[index]!, templateValue(setValues[index]!, exchange)));
    };
    editPieces(exchange.query, namedIn, pieces, take);
    for (let index = 0; index < setNames.length; index++) {
      if (!written[index]) pieces.push(encoded(setNames[index]!, templateValue(setValues[index]!, exchange)));
    }
    for (let index = 0; index < appendedNames.length; index++) {
      pieces.push(encoded(appendedNames[index]!, templateValue(appendedValues[index]!, exchange)));
    }
    return pieces.length === 0 ? '' : `?${pieces.join('&')}`;
  };
}

const REMOVED = -1;

/**
 * A raw query (with its "?", or '') without the parameters `names` names, in every spelling origins
 * read as one of them (as a transform's `remove`); every other parameter byte for byte.
 */
export function compileQueryParameterRemoval(names: readonly string[]): (query: string) => string {
  const namedIn = namedPieces(
    new NamedParameters(new Map(names.map((name) => [parameterKey(name), REMOVED]))),
  );
  const drop = (): void => {};
  return (query) => {
    const pieces: string[] = [];
    editPieces(query, namedIn, pieces, drop);
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
  for (const [decoded] of new URLSearchParams(name)) return decoded;
  return '';
}

/** `name=value`, encoded as a form (what URLSearchParams writes). */
function encoded(name: string, value: string): string {
  return new URLSearchParams([[name, value]]).toString();
}
