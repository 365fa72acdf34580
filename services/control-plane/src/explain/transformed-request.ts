import {
  type HeaderTransform,
  parseTemplate,
  type QueryTransform,
  TEMPLATE_VARIABLES,
  type TemplateVariable,
} from '@vantageedge/shared/domain/route-policies';
import { compileQueryTransform } from '@vantageedge/shared/gateway-policies/query-transform';
import {
  applyRequestHeaderTransform,
  compileRequestHeaderTransform,
} from '@vantageedge/shared/gateway-policies/request-header-transform';

/**
 * The request as a gateway's stages after the route's request transform read it: the gateway applies
 * `request_headers` and `query` to the request itself before its traffic split and its cache look at
 * it (gateway transforms/transform-stages.ts).
 */

export type TemplateValues = Readonly<Record<TemplateVariable, string>>;

type Headers = Record<string, string | string[]>;

/** A value with its `${…}` filled in; one that does not parse is sent as written, as by the gateway. */
function filledIn(text: string, values: TemplateValues): string {
  if (!text.includes('${')) return text;
  const parsed = parseTemplate(text, TEMPLATE_VARIABLES);
  if (!parsed.ok) return text;
  return parsed.parts.map((part) => ('literal' in part ? part.literal : values[part.variable])).join('');
}

function compileValue(text: string): string | ((values: TemplateValues) => string) {
  return text.includes('${') ? (values) => filledIn(text, values) : text;
}

/** The lower-case names `request_headers` writes (sets or adds) on the gateways. */
export function requestHeadersWritten(transform: HeaderTransform | null | undefined): ReadonlySet<string> {
  const compiled = compileRequestHeaderTransform(transform, compileValue);
  return compiled === null ? NOTHING_WRITTEN : new Set(compiled.written);
}

const NOTHING_WRITTEN: ReadonlySet<string> = new Set();

/** The headers after `request_headers`, by the gateways' own transform (request-header-transform.ts). */
export function headersAfterRequestTransform(
  transform: HeaderTransform | null | undefined,
  headers: Readonly<Headers>,
  values: TemplateValues,
): Headers {
  const result: Headers = { ...headers };
  const compiled = compileRequestHeaderTransform(transform, compileValue);
  if (compiled !== null) applyRequestHeaderTransform(compiled, result, values);
  return result;
}

/** The raw query (without its '?', '' when none) after the route's `query` transform, as the gateway's. */
export function queryAfterTransform(
  transform: QueryTransform | null | undefined,
  query: string,
  values: TemplateValues,
): string {
  const compiled = compileQueryTransform<TemplateValues>(transform, compileValue);
  if (compiled === null) return query;
  return compiled(query, values).replace(/^\?/, '');
}
