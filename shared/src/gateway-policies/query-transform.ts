import { parseTemplate, type QueryTransform, TEMPLATE_VARIABLES } from '../domain/route-policies.js';
import { formDecoded } from '../http/form-decoding.js';
import { NamedParameters, namedParameterKeys } from '../http/query-parameter-spellings.js';

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
  const removed = new Set(transform.remove.flatMap(namedParameterKeys));
  const pieces = new WrittenPieces(compileValue);
  const setNames: string[] = [];
  const setPieces: WrittenPiece[] = [];
  // A `set` of a removed name is written after the removal, as an append (before the `add`s).
  const appendedPieces: WrittenPiece[] = [];
  for (const [name, value] of Object.entries(transform.set)) {
    if (namedParameterKeys(name).some((key) => removed.has(key))) appendedPieces.push(pieces.of(name, value));
    else {
      setNames.push(name);
      setPieces.push(pieces.of(name, value));
    }
  }
  for (const [name, value] of Object.entries(transform.add)) appendedPieces.push(pieces.of(name, value));
  if (removed.size + setNames.length + appendedPieces.length === 0) return null;
  /** Each name the transform names, by its namedParameterKeys: the index of its `set`, or REMOVED. */
  const byKey = new Map<string, number>();
  for (const key of removed) byKey.set(key, REMOVED);
  for (const [index, name] of setNames.entries())
    for (const key of namedParameterKeys(name)) byKey.set(key, index);
  const named = new NamedParameters(byKey);
  const namedIn = namedPieces(named);
  return (query, context) => {
    const out: string[] = [];
    const written = new Array<boolean>(setNames.length).fill(false);
    const variables = pieces.variablesOf(context);
    const take = (index: number): void => {
      if (index === REMOVED || written[index]) return; // removed, or a later value of a set name
      written[index] = true;
      out.push(pieceText(setPieces[index]!, variables));
    };
    editPieces(query, namedIn, out, take);
    for (let index = 0; index < setNames.length; index++) {
      if (!written[index]) out.push(pieceText(setPieces[index]!, variables));
    }
    for (const piece of appendedPieces) out.push(pieceText(piece, variables));
    return out.length === 0 ? '' : `?${out.join('&')}`;
  };
}

/**
 * A `name=value` the transform writes, form-encoded when the route compiles: its text when the value
 * is fixed, else its parts, the encoded text and the index of each variable (WrittenPieces.variablesOf)
 * whose encoded value goes between them. A form encodes each character on its own, so the pieces
 * joined are what URLSearchParams writes of the whole value.
 */
type WrittenPiece = string | readonly (string | number)[];

/** The pieces of one transform, and the variables they name, each encoded once per request. */
class WrittenPieces<Context> {
  readonly #compileValue: (text: string) => QueryValue<Context>;
  readonly #variables: ((context: Context) => string)[] = [];
  readonly #variableIndex = new Map<string, number>();

  constructor(compileValue: (text: string) => QueryValue<Context>) {
    this.#compileValue = compileValue;
  }

  of(name: string, text: string): WrittenPiece {
    const prefix = `${formEncoded(name)}=`;
    const value = this.#compileValue(text);
    if (typeof value === 'string') return prefix + formEncoded(value);
    const parsed = parseTemplate(text, TEMPLATE_VARIABLES);
    // Not a template (a stored value): its whole value, as the compiled function gives it.
    if (!parsed.ok) return [prefix, this.#variable(`\n${text}`, value)];
    const parts: (string | number)[] = [prefix];
    for (const part of parsed.parts) {
      if ('literal' in part) parts.push(formEncoded(part.literal));
      else {
        const variable = `\${${part.variable}}`;
        const read = this.#compileValue(variable);
        parts.push(typeof read === 'string' ? formEncoded(read) : this.#variable(variable, read));
      }
    }
    return parts;
  }

  /** The encoded value of each variable for one request; none when no piece names one. */
  variablesOf(context: Context): readonly string[] {
    return this.#variables.length === 0
      ? NO_VARIABLES
      : this.#variables.map((read) => formEncoded(read(context)));
  }

  #variable(key: string, read: (context: Context) => string): number {
    let index = this.#variableIndex.get(key);
    if (index === undefined) {
      index = this.#variables.push(read) - 1;
      this.#variableIndex.set(key, index);
    }
    return index;
  }
}

const NO_VARIABLES: readonly string[] = [];

function pieceText(piece: WrittenPiece, variables: readonly string[]): string {
  if (typeof piece === 'string') return piece;
  let text = '';
  for (const part of piece) text += typeof part === 'string' ? part : variables[part]!;
  return text;
}

const REMOVED = -1;

/**
 * A raw query (with its "?", or '') without the parameters `names` names, in every spelling origins
 * read as one of them (as a transform's `remove`); every other parameter byte for byte, and the query
 * as it came when it has none of them.
 */
export function compileQueryParameterRemoval(names: readonly string[]): (query: string) => string {
  const namedIn = namedPieces(
    new NamedParameters(new Map(names.flatMap(namedParameterKeys).map((key) => [key, REMOVED]))),
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

/** Text encoded as a form's name or value (as URLSearchParams writes it). */
function formEncoded(text: string): string {
  return FORM_SAFE.test(text) ? text : new URLSearchParams([['', text]]).toString().slice(1);
}

/** What a form writes as it is (the WHATWG URL standard's urlencoded serializer). */
const FORM_SAFE = /^[A-Za-z0-9*\-._]*$/;
