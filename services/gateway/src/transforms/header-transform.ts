import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { HeaderTransform } from '@vantageedge/shared/domain/route-policies';
import type { GatewayExchange } from '../pipeline/exchange.js';
import { compileValueTemplate, type ValueTemplate } from './value-template.js';

/** set / add / remove on a header map, compiled once per route; names lower-cased. */
export interface CompiledHeaderTransform {
  readonly remove: readonly string[];
  readonly set: ReadonlyArray<readonly [string, ValueTemplate]>;
  readonly add: ReadonlyArray<readonly [string, ValueTemplate]>;
  /** The names set or added, once each. */
  readonly written: readonly string[];
}

export function compileHeaderTransform(
  transform: HeaderTransform | null | undefined,
): CompiledHeaderTransform | null {
  if (transform === null || transform === undefined) return null;
  const set = Object.entries(transform.set).map(
    ([name, value]) => [name.toLowerCase(), compileValueTemplate(value)] as const,
  );
  const add = Object.entries(transform.add).map(
    ([name, value]) => [name.toLowerCase(), compileValueTemplate(value)] as const,
  );
  const compiled: CompiledHeaderTransform = {
    remove: transform.remove.map((name) => name.toLowerCase()),
    set,
    add,
    written: [...new Set([...set, ...add].map(([name]) => name))],
  };
  return compiled.remove.length + compiled.written.length === 0 ? null : compiled;
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
  for (const [name, value] of transform.set) target[name] = value(exchange);
  for (const [name, value] of transform.add) {
    const current = Object.hasOwn(target, name) ? target[name] : undefined;
    const added = value(exchange);
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
  for (const [name, value] of transform.set) res.setHeader(name, value(exchange));
  for (const [name, value] of transform.add) {
    const current = res.getHeader(name);
    const added = value(exchange);
    if (current === undefined) res.setHeader(name, added);
    else if (Array.isArray(current)) res.setHeader(name, [...current, added]);
    else res.setHeader(name, [String(current), added]);
  }
}
