/**
 * How origins read a query parameter's name, so that a route's transform reaches every spelling of a
 * name it removes or sets. Origins read one name in many spellings: PHP, Rails (Rack) and Express (qs)
 * read `role[]`, `role[0]` and `role[x]` as `role`, Rack before 3 (Rails before 7.1) also `[role]`,
 * `role]` and `]role`; PHP reads `user.id`, `user id` and `user[id` (a `[` no `]` follows) as `user_id`
 * (and drops leading spaces); ASP.NET matches names whatever their case. Over-matching costs a
 * parameter the route names anyway; under-matching lets a client send a removed parameter past the
 * gateway.
 */

/** The name in the form these readings share: lower case, PHP's spellings of `_` as `_`. */
export function parameterKey(decodedName: string): string {
  // Rack 2 drops brackets before a name and closing ones after it: `[role]` and `role]` are `role`.
  const name = decodedName.trimStart().toLowerCase().replace(LEADING_BRACKETS, '');
  const closing = name.indexOf(']');
  const bracket = name.indexOf('[');
  if (closing >= 0 && (bracket < 0 || closing < bracket)) {
    const after = name.slice(closing).replace(LEADING_BRACKETS, '');
    const base = phpName(name.slice(0, closing));
    return after === '' ? base : `${base}[${after}`;
  }
  if (bracket < 0) return phpName(name);
  const base = phpName(name.slice(0, bracket));
  // PHP reads a `[` that no `]` follows as `_`, and `.`, ` ` and `[` after it too: `user[id` is `user_id`.
  if (closing < 0) return `${base}_${name.slice(bracket + 1).replace(/[ .[]/g, '_')}`;
  return base + name.slice(bracket);
}

const LEADING_BRACKETS = /^[[\]]+/;

/** PHP reads `.` and ` ` in a name as `_`. */
function phpName(name: string): string {
  return name.replace(/[ .]/g, '_');
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
