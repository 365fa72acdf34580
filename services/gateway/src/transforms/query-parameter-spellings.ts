/**
 * How origins read a query parameter's name, so that a route's transform reaches every spelling of a
 * name it removes or sets. Origins read one name in many spellings: PHP, Rails (Rack) and Express (qs)
 * read `role[]`, `role[0]` and `role[x]` as `role`; PHP reads `user.id` and `user id` as `user_id` (and
 * drops leading spaces); ASP.NET matches names whatever their case. Over-matching costs a parameter
 * the route names anyway; under-matching lets a client send a removed parameter past the gateway.
 */

/** The name in the form these readings share: lower case, PHP's spellings of `_` as `_`. */
export function parameterKey(decodedName: string): string {
  const name = decodedName.trimStart().toLowerCase();
  const bracket = name.indexOf('[', 1);
  const base = bracket < 0 ? name : name.slice(0, bracket);
  const phpBase = base.replace(/[ .]/g, '_');
  return bracket < 0 ? phpBase : phpBase + name.slice(bracket);
}

/**
 * The entry of `byKey` (keyed by parameterKey) a parameter named `decodedName` is read as: its own
 * key, or the key it extends with `[…]` (`role[]`, `filter[a][b]` is also `filter[a]`'s).
 */
export function namedEntry<T>(byKey: ReadonlyMap<string, T>, decodedName: string): T | undefined {
  const key = parameterKey(decodedName);
  const exact = byKey.get(key);
  if (exact !== undefined) return exact;
  for (let bracket = key.lastIndexOf('['); bracket > 0; bracket = key.lastIndexOf('[', bracket - 1)) {
    const entry = byKey.get(key.slice(0, bracket));
    if (entry !== undefined) return entry;
  }
  return undefined;
}
