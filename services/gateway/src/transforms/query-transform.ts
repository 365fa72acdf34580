import type { QueryTransform } from '@vantageedge/shared/domain/route-policies';
import type { GatewayExchange } from '../pipeline/exchange.js';
import { compileValueTemplate } from './value-template.js';

/** The new raw query (with its "?", or '') for a request; compiled once per route. */
export type CompiledQueryTransform = (exchange: GatewayExchange) => string;

/**
 * remove, then set (replaces every value, in the place of the first), then add (appends); the values
 * written are URL-encoded. Parameters the transform does not name reach the origin byte for byte: the
 * query is edited as its `&`-separated pieces, never parsed and written again (URLSearchParams would
 * re-encode every other parameter: `%20` as `+`, `/` as `%2F`, a byte that is not UTF-8 as U+FFFD,
 * breaking signed URLs), and a name is decoded only when it may be one the transform names.
 */
export function compileQueryTransform(
  transform: QueryTransform | null | undefined,
): CompiledQueryTransform | null {
  if (transform === null || transform === undefined) return null;
  const removed = new Set(transform.remove);
  const set = Object.entries(transform.set)
    .filter(([name]) => !removed.has(name))
    .map(([name, value]) => [name, compileValueTemplate(value)] as const);
  const setNames = new Map(set.map(([name], index) => [name, index]));
  const add = Object.entries(transform.add).map(
    ([name, value]) => [name, compileValueTemplate(value)] as const,
  );
  // A `set` of a removed name is written after the removal, as an append.
  const appendedSets = Object.entries(transform.set)
    .filter(([name]) => removed.has(name))
    .map(([name, value]) => [name, compileValueTemplate(value)] as const);
  if (removed.size + set.length + add.length + appendedSets.length === 0) return null;
  const named = new Set([...removed, ...setNames.keys()]);
  return (exchange) => {
    const raw = exchange.query.startsWith('?') ? exchange.query.slice(1) : exchange.query;
    const pieces: string[] = [];
    const written = new Array<boolean>(set.length).fill(false);
    if (raw !== '') {
      for (const piece of raw.split('&')) {
        if (piece === '') continue;
        const name = pieceName(piece);
        if (!named.has(name)) {
          pieces.push(piece);
          continue;
        }
        const index = setNames.get(name);
        if (index === undefined || written[index]) continue; // removed, or a later value of a set name
        written[index] = true;
        pieces.push(encoded(name, set[index]![1](exchange)));
      }
    }
    for (let index = 0; index < set.length; index++) {
      if (!written[index]) pieces.push(encoded(set[index]![0], set[index]![1](exchange)));
    }
    for (const [name, value] of appendedSets) pieces.push(encoded(name, value(exchange)));
    for (const [name, value] of add) pieces.push(encoded(name, value(exchange)));
    return pieces.length === 0 ? '' : `?${pieces.join('&')}`;
  };
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
