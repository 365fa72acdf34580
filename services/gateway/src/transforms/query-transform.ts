import type { QueryTransform } from '@vantageedge/shared/domain/route-policies';
import { compileQueryTransform as compileShared } from '@vantageedge/shared/gateway-policies/query-transform';
import type { GatewayExchange } from '../pipeline/exchange.js';
import { compileValueTemplate } from './value-template.js';

export { compileQueryParameterRemoval } from '@vantageedge/shared/gateway-policies/query-transform';

/** The new raw query (with its "?", or '') for a request; compiled once per route. */
export type CompiledQueryTransform = (exchange: GatewayExchange) => string;

/**
 * The route's `query` transform on the request's query (shared/src/gateway-policies/query-transform.ts),
 * its `${…}` values filled in from the exchange.
 */
export function compileQueryTransform(
  transform: QueryTransform | null | undefined,
): CompiledQueryTransform | null {
  const compiled = compileShared<GatewayExchange>(transform, compileValueTemplate);
  return compiled === null ? null : (exchange) => compiled(exchange.query, exchange);
}
