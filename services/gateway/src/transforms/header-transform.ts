import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { HeaderTransform } from '@vantageedge/shared/domain/route-policies';
import { CheckedHeader } from '../http/gateway-server-response.js';
import type { GatewayExchange } from '../pipeline/exchange.js';
import { compileValueTemplate, templateValue, type ValueTemplate } from './value-template.js';

/**
 * set / add / remove on a header map, compiled once per route; names lower-cased. Each write is a name
 * and its value at the same index of two arrays (no array per header).
 */
export interface CompiledHeaderTransform {
  readonly remove: readonly string[];
  readonly setNames: readonly string[];
  readonly setValues: readonly ValueTemplate[];
  readonly addNames: readonly string[];
  readonly addValues: readonly ValueTemplate[];
  /** The names set or added, once each. */
  readonly written: readonly string[];
}

export function compileHeaderTransform(
  transform: HeaderTransform | null | undefined,
): CompiledHeaderTransform | null {
  if (transform === null || transform === undefined) return null;
  const setNames: string[] = [];
  const setValues: ValueTemplate[] = [];
  for (const [name, value] of Object.entries(transform.set)) {
    setNames.push(name.toLowerCase());
    setValues.push(compileValueTemplate(value));
  }
  const addNames: string[] = [];
  const addValues: ValueTemplate[] = [];
  for (const [name, value] of Object.entries(transform.add)) {
    addNames.push(name.toLowerCase());
    addValues.push(compileValueTemplate(value));
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
 * The transform's `set` writes of a fixed value, checked once as prepared head lines (CheckedHeader),
 * and the rest of it (null: nothing left). Not Vary (CORS keeps Origin in the Vary a route writes), not
 * a header `add` writes too (its line goes beside the set one), not one node reads as it writes the head
 * or would refuse (those stay the transform's, checked on each response as before).
 */
export function withPreparedSets(transform: CompiledHeaderTransform): {
  readonly prepared: readonly CheckedHeader[];
  readonly rest: CompiledHeaderTransform | null;
} {
  const prepared: CheckedHeader[] = [];
  const setNames: string[] = [];
  const setValues: ValueTemplate[] = [];
  for (let i = 0; i < transform.setNames.length; i++) {
    const name = transform.setNames[i]!;
    const value = transform.setValues[i]!;
    const header =
      typeof value === 'string' && name !== 'vary' && !transform.addNames.includes(name)
        ? checkedOrNull(name, value)
        : null;
    if (header !== null) prepared.push(header);
    else {
      setNames.push(name);
      setValues.push(value);
    }
  }
  if (prepared.length === 0) return { prepared, rest: transform };
  const written = writtenOnce(setNames, transform.addNames);
  const rest =
    transform.remove.length + written.length === 0 ? null : { ...transform, setNames, setValues, written };
  return { prepared, rest };
}

function checkedOrNull(name: string, value: string): CheckedHeader | null {
  try {
    return new CheckedHeader(name, value);
  } catch {
    return null;
  }
}

/**
 * Applies remove, then set, then add (a set header can also get an added line). The header objects
 * inherit from Object.prototype, and routes stored before commands refused `constructor` as a name may
 * add it: only a line the message carries is kept beside the added one.
 */
export function applyHeaderTransform(
  transform: CompiledHeaderTransform,
  headers: IncomingHttpHeaders | OutgoingHttpHeaders,
  exchange: GatewayExchange,
): void {
  const target = headers as Record<string, string | string[] | number | undefined>;
  for (const name of transform.remove) delete target[name];
  const { setNames, setValues, addNames, addValues } = transform;
  for (let i = 0; i < setNames.length; i++) target[setNames[i]!] = templateValue(setValues[i]!, exchange);
  for (let i = 0; i < addNames.length; i++) {
    const name = addNames[i]!;
    const current = Object.hasOwn(target, name) ? target[name] : undefined;
    const added = templateValue(addValues[i]!, exchange);
    if (current === undefined) target[name] = added;
    else if (Array.isArray(current)) target[name] = [...current, added];
    else target[name] = [String(current), added];
  }
}

/**
 * applyHeaderTransform on a response whose head is not written yet (an answer the cache replays from
 * a stored entry, whose headers are already set on it).
 */
export function applyHeaderTransformToResponse(
  transform: CompiledHeaderTransform,
  res: ServerResponse,
  exchange: GatewayExchange,
): void {
  for (const name of transform.remove) res.removeHeader(name);
  const { setNames, setValues, addNames, addValues } = transform;
  for (let i = 0; i < setNames.length; i++)
    res.setHeader(setNames[i]!, templateValue(setValues[i]!, exchange));
  for (let i = 0; i < addNames.length; i++) {
    const name = addNames[i]!;
    const current = res.getHeader(name);
    const added = templateValue(addValues[i]!, exchange);
    if (current === undefined) res.setHeader(name, added);
    else if (Array.isArray(current)) res.setHeader(name, [...current, added]);
    else res.setHeader(name, [String(current), added]);
  }
}
