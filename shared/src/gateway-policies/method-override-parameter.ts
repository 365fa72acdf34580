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

/** A raw query (with its "?", or '') without the method-override parameter; as it came when it has none. */
export function withoutMethodOverride(query: string): string {
  return MAY_NAME_IT.test(query) ? removeOverride(query) : query;
}
