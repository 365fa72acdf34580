import { compileQueryParameterRemoval } from './query-transform.js';

/**
 * The query parameter origins take a request's method from instead of its own: Symfony and Laravel
 * (`_method` of a POST's query), Express's method-override (`methodOverride('_method')` reads the
 * query), Scalatra and Akka HTTP's overrideMethodWithParameter. The gateway chose the route, and its
 * auth, by the request's method: `POST /comments/5?_method=DELETE` would reach a public POST route
 * and delete at the origin. Like the method-override headers (dropped-request-headers.ts), it never
 * reaches the origin, nor any stage that reads the query, in any spelling an origin reads as it
 * (`.method`, `%5Fmethod`, after a `;`: query-parameter-spellings.ts).
 */
export const METHOD_OVERRIDE_PARAMETER = '_method';

const removeOverride = compileQueryParameterRemoval([METHOD_OVERRIDE_PARAMETER]);

/**
 * What no spelling of the parameter lacks: its letters (in any case), or an escape of one of them
 * (`%6D`, `%u006D`, and `%25u006D` or `%%75006D`, both read as `%u006D`), or a character past U+00FF
 * (node's URLSearchParams reads U+016D as `m` in a name that is not UTF-8). Most queries escape
 * something (`%20`, `%2F`): only these are read name by name.
 */
const MAY_NAME_IT = /[Mm][Ee][Tt][Hh][Oo][Dd]|%(?:[46][458DdFf]|[57]4|75|25|[Uu])|[\u0100-\uffff]/;

/** MAY_NAME_IT, each test going on from the last one's end. */
const MAY_NAME_IT_ON = new RegExp(MAY_NAME_IT.source, 'g');

/**
 * Whether MAY_NAME_IT finds something in a pair's name (before its first `=`; pairs separated by `&`
 * or `;`). What it finds never holds a separator or `=`: looking back from it to the nearest one tells
 * name from value. Linear: past a find in a value, the search goes on at the next pair.
 */
function namesMayNameIt(query: string): boolean {
  const found = MAY_NAME_IT_ON;
  found.lastIndex = 0;
  while (found.test(query)) {
    let at = found.lastIndex - 1;
    while (at >= 0 && !endsName(query.charCodeAt(at))) at--;
    if (at < 0 || query.charCodeAt(at) !== 61 /* = */) return true;
    let next = found.lastIndex;
    while (next < query.length && !separates(query.charCodeAt(next))) next++;
    found.lastIndex = next;
  }
  return false;
}

/** `&` or `;`. */
function separates(code: number): boolean {
  return code === 38 || code === 59;
}

/** What is before a name (a separator) or ends it (`=`). */
function endsName(code: number): boolean {
  return separates(code) || code === 61;
}

/** A raw query (with its "?", or '') without the method-override parameter; as it came when it has none. */
export function withoutMethodOverride(query: string): string {
  // Found in values alone (`?q=100%25`, `?sort=method`): not read pair by pair, a tenth of the cost.
  return MAY_NAME_IT.test(query) && namesMayNameIt(query) ? removeOverride(query) : query;
}
