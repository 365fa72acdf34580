import { droppedFromClients } from '@vantageedge/shared/domain/dropped-request-headers';
import {
  type HeaderTransform,
  parseTemplate,
  type QueryTransform,
  requestHeaderNeverWritten,
  TEMPLATE_VARIABLES,
  type TemplateVariable,
} from '@vantageedge/shared/domain/route-policies';
import { compileQueryTransform } from '@vantageedge/shared/gateway-policies/query-transform';
import { otherSpellingsSent } from '@vantageedge/shared/http/cgi-spellings';

/**
 * The request as a gateway's stages after the route's request transform read it: the gateway applies
 * `request_headers` and `query` to the request itself before its traffic split and its cache look at
 * it (gateway transforms/transform-stages.ts).
 */

export type TemplateValues = Readonly<Record<TemplateVariable, string>>;

type Headers = Record<string, string | string[]>;

const CDN_LOOP = 'cdn-loop';
const neverWritten = (name: string) => name === CDN_LOOP || requestHeaderNeverWritten(name);

/** A value with its `${…}` filled in; one that does not parse is sent as written, as by the gateway. */
function filledIn(text: string, values: TemplateValues): string {
  if (!text.includes('${')) return text;
  const parsed = parseTemplate(text, TEMPLATE_VARIABLES);
  if (!parsed.ok) return text;
  return parsed.parts.map((part) => ('literal' in part ? part.literal : values[part.variable])).join('');
}

/** The lower-case names `request_headers` writes (sets or adds) on the gateways. */
export function requestHeadersWritten(transform: HeaderTransform | null | undefined): ReadonlySet<string> {
  if (transform === null || transform === undefined) return NOTHING_WRITTEN;
  const names = [...Object.keys(transform.set), ...Object.keys(transform.add)].map((name) =>
    name.toLowerCase(),
  );
  return new Set(names.filter((name) => !neverWritten(name)));
}

const NOTHING_WRITTEN: ReadonlySet<string> = new Set();

/**
 * The headers after `request_headers`: every spelling the client sent of a name the route removes or
 * sets goes (`X_Canary` with `x-canary`), then `set` replaces, then `add` appends a line after the
 * client's — but the client's line of a header the gateway drops from clients (X-Api-Key,
 * Authorization, the client address headers: droppedFromClients) goes first, as a removed one, so the
 * route's line is the only one. Writes gateways leave out of stored routes (names routes never write,
 * CDN-Loop) are left out here too.
 */
export function headersAfterRequestTransform(
  transform: HeaderTransform | null | undefined,
  headers: Readonly<Headers>,
  values: TemplateValues,
): Headers {
  if (transform === null || transform === undefined) return { ...headers };
  const lower = (entries: Record<string, string>) =>
    Object.entries(entries)
      .map(([name, value]) => [name.toLowerCase(), value] as const)
      .filter(([name]) => !neverWritten(name));
  const set = lower(transform.set);
  const add = lower(transform.add);
  const remove = [
    ...transform.remove.map((name) => name.toLowerCase()).filter((name) => name !== CDN_LOOP),
    ...add.map(([name]) => name).filter(droppedFromClients),
  ];
  const result: Headers = { ...headers };
  for (const name of new Set([...remove, ...set.map(([setName]) => setName)])) {
    for (const spelling of otherSpellingsSent(result, name)) delete result[spelling];
  }
  for (const name of remove) delete result[name];
  for (const [name, value] of set) result[name] = filledIn(value, values);
  for (const [name, value] of add) {
    const current = Object.hasOwn(result, name) ? result[name] : undefined;
    const added = filledIn(value, values);
    result[name] = current === undefined ? added : [...(Array.isArray(current) ? current : [current]), added];
  }
  return result;
}

/** The raw query (without its '?', '' when none) after the route's `query` transform, as the gateway's. */
export function queryAfterTransform(
  transform: QueryTransform | null | undefined,
  query: string,
  values: TemplateValues,
): string {
  const compiled = compileQueryTransform<TemplateValues>(transform, (text) =>
    text.includes('${') ? (context) => filledIn(text, context) : text,
  );
  if (compiled === null) return query;
  return compiled(query, values).replace(/^\?/, '');
}
