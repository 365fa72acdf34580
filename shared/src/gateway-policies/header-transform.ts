import type { HeaderTransform } from '../domain/route-policies.js';

/**
 * A value a header transform writes: its text, or a function of the request when it names `${…}`
 * variables (the gateway compiles them once per route; explain fills them in for one request).
 */
export type HeaderValue<Context> = string | ((context: Context) => string);

/**
 * set / add / remove on a header map, compiled once per route; names lower-cased. Each write is a name
 * and its value at the same index of two arrays (no array per header).
 */
export interface CompiledHeaderTransform<Context> {
  readonly remove: readonly string[];
  readonly setNames: readonly string[];
  readonly setValues: readonly HeaderValue<Context>[];
  readonly addNames: readonly string[];
  readonly addValues: readonly HeaderValue<Context>[];
  /** The names set or added, once each. */
  readonly written: readonly string[];
}

/** Header lines as node holds them: a request's, or a response's (whose values may be numbers). */
export type HeaderLines = Record<string, string | string[] | number | undefined>;

export function compileHeaderTransform<Context>(
  transform: HeaderTransform | null | undefined,
  compileValue: (text: string) => HeaderValue<Context>,
): CompiledHeaderTransform<Context> | null {
  if (transform === null || transform === undefined) return null;
  const setNames: string[] = [];
  const setValues: HeaderValue<Context>[] = [];
  for (const [name, value] of Object.entries(transform.set)) {
    setNames.push(name.toLowerCase());
    setValues.push(compileValue(value));
  }
  const addNames: string[] = [];
  const addValues: HeaderValue<Context>[] = [];
  for (const [name, value] of Object.entries(transform.add)) {
    addNames.push(name.toLowerCase());
    addValues.push(compileValue(value));
  }
  const remove = transform.remove.map((name) => name.toLowerCase());
  const written = writtenOnce(setNames, addNames);
  if (remove.length + written.length === 0) return null;
  return { remove, setNames, setValues, addNames, addValues, written };
}

/** The names of `set` then `add`, each once; `set`'s own array when `add` writes none of them again. */
export function writtenOnce(setNames: readonly string[], addNames: readonly string[]): readonly string[] {
  if (addNames.length === 0 && new Set(setNames).size === setNames.length) return setNames;
  return [...new Set([...setNames, ...addNames])];
}

/**
 * The transform without its writes (set, add) of headers commands refuse now: a route stored before
 * the rule keeps its other writes.
 */
export function withoutWrites<Context>(
  transform: CompiledHeaderTransform<Context> | null,
  refused: (name: string) => boolean,
): CompiledHeaderTransform<Context> | null {
  if (transform === null || !transform.written.some(refused)) return transform;
  const kept = (names: readonly string[]) => (_: unknown, index: number) => !refused(names[index]!);
  const written = transform.written.filter((name) => !refused(name));
  if (written.length + transform.remove.length === 0) return null;
  return {
    ...transform,
    setNames: transform.setNames.filter(kept(transform.setNames)),
    setValues: transform.setValues.filter(kept(transform.setNames)),
    addNames: transform.addNames.filter(kept(transform.addNames)),
    addValues: transform.addValues.filter(kept(transform.addNames)),
    written,
  };
}

export function headerValue<Context>(value: HeaderValue<Context>, context: Context): string {
  return typeof value === 'string' ? value : value(context);
}

/**
 * Applies remove, then set, then add (a set header can also get an added line). The header objects
 * inherit from Object.prototype, and routes stored before commands refused `constructor` as a name may
 * add it: only a line the message carries is kept beside the added one.
 */
export function applyHeaderTransform<Context>(
  transform: CompiledHeaderTransform<Context>,
  headers: HeaderLines,
  context: Context,
): void {
  for (const name of transform.remove) delete headers[name];
  const { setNames, setValues, addNames, addValues } = transform;
  for (let i = 0; i < setNames.length; i++) headers[setNames[i]!] = headerValue(setValues[i]!, context);
  for (let i = 0; i < addNames.length; i++) {
    const name = addNames[i]!;
    const current = Object.hasOwn(headers, name) ? headers[name] : undefined;
    const added = headerValue(addValues[i]!, context);
    if (current === undefined) headers[name] = added;
    else if (Array.isArray(current)) headers[name] = [...current, added];
    else headers[name] = [String(current), added];
  }
}
