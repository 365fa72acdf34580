import type { QueryTransform } from '@vantageedge/shared/domain/route-policies';
import type { GatewayExchange } from '../pipeline/exchange.js';
import { compileValueTemplate, type ValueTemplate } from './value-template.js';

/** The new raw query (with its "?", or '') for a request; compiled once per route. */
export type CompiledQueryTransform = (exchange: GatewayExchange) => string;

/** remove, then set (replaces every value), then add (appends); values are URL-encoded. */
export function compileQueryTransform(
  transform: QueryTransform | null | undefined,
): CompiledQueryTransform | null {
  if (transform === null || transform === undefined) return null;
  const remove = transform.remove;
  const set: Array<[string, ValueTemplate]> = Object.entries(transform.set).map(([n, v]) => [
    n,
    compileValueTemplate(v),
  ]);
  const add: Array<[string, ValueTemplate]> = Object.entries(transform.add).map(([n, v]) => [
    n,
    compileValueTemplate(v),
  ]);
  if (remove.length + set.length + add.length === 0) return null;
  return (exchange) => {
    const params = new URLSearchParams(exchange.query);
    for (const name of remove) params.delete(name);
    for (const [name, value] of set) params.set(name, value(exchange));
    for (const [name, value] of add) params.append(name, value(exchange));
    const text = params.toString();
    return text === '' ? '' : `?${text}`;
  };
}
