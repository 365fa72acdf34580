import type { ServerResponse } from 'node:http';
import type { HeaderTransform } from '@vantageedge/shared/domain/route-policies';
import {
  compileHeaderTransform as compileShared,
  type CompiledHeaderTransform as SharedCompiledHeaderTransform,
  writtenOnce,
} from '@vantageedge/shared/gateway-policies/header-transform';
import { CheckedHeader } from '../http/gateway-server-response.js';
import type { GatewayExchange } from '../pipeline/exchange.js';
import { compileValueTemplate, templateValue, type ValueTemplate } from './value-template.js';

export { applyHeaderTransform } from '@vantageedge/shared/gateway-policies/header-transform';

/** A route's header transform, its `${…}` values compiled to functions of the exchange. */
export type CompiledHeaderTransform = SharedCompiledHeaderTransform<GatewayExchange>;

/** The transform (shared/src/gateway-policies/header-transform.ts) with its values compiled for the gateway. */
export function compileHeaderTransform(
  transform: HeaderTransform | null | undefined,
): CompiledHeaderTransform | null {
  return compileShared<GatewayExchange>(transform, compileValueTemplate);
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
