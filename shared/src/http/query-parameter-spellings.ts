/**
 * How origins read a query parameter's name, so that a route's transform reaches every spelling of a
 * name it removes or sets, and a route's query condition reads every spelling of its name. Origins read one name in many spellings: PHP, Rails (Rack) and Express (qs)
 * read `role[]`, `role[0]` and `role[x]` as `role`, Rack before 3 (Rails before 7.1) also `[role]`,
 * `role]` and `]role`; PHP reads `user.id`, `user id` and `user[id` (a `[` no `]` follows) as `user_id`
 * (and drops leading spaces), and ends a name at a NUL byte (`role%00x`); ASP.NET matches names
 * whatever their case, and classic ASP.NET decodes `%u0072ole` as `role`; Spring MVC's data binding
 * takes `!role` for `role` when no `role` is sent, and `filter['status']` for `filter[status]`; PHP
 * stops a name at a `]` no `[` follows (`filter[a]x` is `filter[a]`, Rack's `filter[a][x]`). ASP.NET
 * Core's model binding and Spring's read a `.` as a property of the name before it: `filter.status` is
 * `filter[status]` to them, where PHP reads `filter_status` (dottedParameterKey: a second reading of a
 * name with a `.`, on both the client's and the route's side). Over-matching costs a
 * parameter the route names anyway; under-matching lets a client send a removed parameter past the
 * gateway, or past a route that refuses it.
 */

/** The name in the form these readings share: lower case, PHP's spellings of `_` as `_`. */
export function parameterKey(decodedName: string): string {
  // Letters, digits, `_` and `-` alone (most names): none of the readings below changes them but case.
  if (PLAIN_NAME.test(decodedName)) return decodedName.toLowerCase();
  return keyOfUnescaped(percentUDecoded(decodedName));
}

/**
 * The name as classic ASP.NET (System.Web's HttpUtility) decodes it: it also decodes `%uXXXX`, which
 * URLSearchParams leaves as it is. Once: `%u0025u002e` is `%u002e` to it.
 */
function percentUDecoded(decodedName: string): string {
  return decodedName.includes('%u') ? decodedName.replace(PERCENT_U, fromCodeUnit) : decodedName;
}

/** parameterKey of a name whose `%uXXXX` escapes are decoded already. */
function keyOfUnescaped(unescaped: string): string {
  // PHP reads a decoded name as a C string, up to its first NUL: `role%00x` is `role`.
  const nul = unescaped.indexOf('\0');
  const read = nul < 0 ? unescaped : unescaped.slice(0, nul);
  // Spring MVC binds `!role` as `role`'s default (WebDataBinder's field default prefix); Rack 2 drops
  // brackets before a name and closing ones after it: `[role]` and `role]` are `role`.
  const lower = read.trimStart().toLowerCase();
  const unprefixed = lower.charCodeAt(0) === 33 /* ! */ ? lower.slice(1) : lower;
  const first = unprefixed.charCodeAt(0);
  const name =
    first === 91 /* [ */ || first === 93 /* ] */ ? unprefixed.replace(LEADING_BRACKETS, '') : unprefixed;
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
  return base + bracketedKeys(name.slice(bracket));
}

/**
 * The keys of a name's `[…]` part (from its first `[`, which a `]` follows) as origins read them: a
 * key quoted in `'` or `"` is the key within (Spring's data binding: `filter['status']` is
 * `filter[status]`), and what follows a `]` but is no `[` is one key more: Rack reads `filter[a]x` as
 * `filter[a][x]`, PHP and qs as `filter[a]` (they drop it), which `filter[a][x]` extends too.
 */
function bracketedKeys(brackets: string): string {
  if (!QUOTED_OR_TRAILING.test(brackets)) return brackets;
  let keys = '';
  let at = 0;
  while (at < brackets.length) {
    if (brackets.charCodeAt(at) !== 91 /* [ */) return `${keys}[${brackets.slice(at)}]`;
    const closing = brackets.indexOf(']', at + 1);
    if (closing < 0) return keys + brackets.slice(at);
    keys += `[${unquoted(brackets.slice(at + 1, closing))}]`;
    at = closing + 1;
  }
  return keys;
}

/** A `'` or `"` just inside a bracket, or a `]` that neither ends the name nor comes before a `[`. */
const QUOTED_OR_TRAILING = /\[['"]|\][^[]/;

function unquoted(key: string): string {
  const quote = key[0];
  return key.length > 1 && (quote === "'" || quote === '"') && key.endsWith(quote) ? key.slice(1, -1) : key;
}

/**
 * The name as ASP.NET Core's model binding and Spring's data binding read a `.` outside brackets in
 * it: the key of what the part before it names (`filter.status` is `filter[status]` to them, as
 * `filter[status]` is; `user.role` binds the `role` of `user`), where PHP reads it as `filter_status`
 * (parameterKey). Undefined for a name without such a `.`: the one reading parameterKey gives is all.
 */
export function dottedParameterKey(decodedName: string): string | undefined {
  // Classic ASP.NET MVC binds `user.role` as `user`'s too, and decodes `user%u002erole` to it first.
  const name = percentUDecoded(decodedName);
  if (!name.includes('.')) return undefined;
  let bracketed = '';
  let depth = 0;
  let open = false;
  for (const character of name) {
    if (character === '[') depth++;
    else if (character === ']' && depth > 0) depth--;
    if (depth === 0 && character === '.') {
      bracketed += open ? '][' : '[';
      open = true;
      continue;
    }
    if (open && character === '[') {
      bracketed += ']';
      open = false;
    }
    bracketed += character;
  }
  if (open) bracketed += ']';
  if (bracketed === name) return undefined;
  return keyOfUnescaped(bracketed);
}

/**
 * The keys a name a route gives is looked up by: its namedParameterKey and, for a name with a `.`, the
 * key ASP.NET Core and Spring read it as (dottedParameterKey: `user.id` names `user_id` and `user[id]`).
 */
export function namedParameterKeys(name: string): string[] {
  const key = namedParameterKey(name);
  const dotted = dottedParameterKey(name);
  if (dotted === undefined) return [key];
  let dottedKey = dotted;
  while (dottedKey.length > 2 && dottedKey.endsWith('[]')) dottedKey = dottedKey.slice(0, -2);
  return dottedKey === key ? [key] : [key, dottedKey];
}

/**
 * The key a name a route gives (a query transform's, a cache bypass's) is looked up by: its
 * parameterKey without the `[]` after it, which PHP, Rails (Rack) and Express (qs) read as "a value of
 * the array": `ids[]` names `ids`, which those origins fill from `ids[]=7`, `ids[0]=7` and `ids=7` alike.
 */
export function namedParameterKey(name: string): string {
  let key = parameterKey(name);
  while (key.length > 2 && key.endsWith('[]')) key = key.slice(0, -2);
  return key;
}

const LEADING_BRACKETS = /^[[\]]+/;
const PLAIN_NAME = /^[A-Za-z0-9_-]*$/;

const PERCENT_U = /%u([0-9A-Fa-f]{4})/g;

function fromCodeUnit(_escape: string, hex: string): string {
  return String.fromCharCode(Number.parseInt(hex, 16));
}

/** PHP reads `.` and ` ` in a name as `_`. */
function phpName(name: string): string {
  return name.includes('.') || name.includes(' ') ? name.replace(/[ .]/g, '_') : name;
}

/**
 * Entries keyed by parameterKey (the names a route's transform names: namedParameterKeys), found by the
 * name a request's parameter is read as: its own key, or the key it extends with `[…]` (`role[]`,
 * `filter[a][b]` is also `filter[a]`'s), and for a name with a `.` its dottedParameterKey too. The name
 * is the client's: only its prefixes up to the longest key are looked up, so a name of thousands of `[`
 * costs what a short one does (each lookup hashes the prefix again). `byKey` must not change once given.
 */
export class NamedParameters<T> {
  readonly #byKey: ReadonlyMap<string, T>;
  readonly #longestKey: number;

  constructor(byKey: ReadonlyMap<string, T>) {
    this.#byKey = byKey;
    let longest = 0;
    for (const key of byKey.keys()) longest = Math.max(longest, key.length);
    this.#longestKey = longest;
  }

  entryOf(decodedName: string): T | undefined {
    if (PLAIN_NAME.test(decodedName)) return this.#byKey.get(decodedName.toLowerCase());
    const entry = this.#entryOfKey(parameterKey(decodedName));
    if (entry !== undefined) return entry;
    const dotted = dottedParameterKey(decodedName);
    return dotted === undefined ? undefined : this.#entryOfKey(dotted);
  }

  #entryOfKey(key: string): T | undefined {
    const exact = this.#byKey.get(key);
    if (exact !== undefined) return exact;
    // A prefix ending at a `[` past the longest key is no key.
    for (
      let bracket = key.lastIndexOf('[', this.#longestKey);
      bracket > 0;
      bracket = key.lastIndexOf('[', bracket - 1)
    ) {
      const entry = this.#byKey.get(key.slice(0, bracket));
      if (entry !== undefined) return entry;
    }
    return undefined;
  }
}
