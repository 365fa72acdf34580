import { sentHeader } from './header-values.js';

type RequestHeaders = Readonly<Record<string, string | string[] | undefined>>;

/**
 * A request header's name as CGI-style origins read it: PHP, Rack and WSGI servers put both X-Real-IP
 * and X_Real_IP in HTTP_X_REAL_IP, so to them a `_` in a name is a `-`.
 */
export function asOriginsReadIt(name: string): string {
  return name.includes('_') ? name.replaceAll('_', '-') : name;
}

/**
 * The request's header names spelled with `_`, by their spelling with `-`; null when it has none (nearly
 * every request). Built once per headers object: a response may vary on thousands of names, and each is
 * then looked up without another pass over the request's headers.
 */
const underscoreSpellings = new WeakMap<RequestHeaders, Map<string, string[]> | null>();

function underscoreSpellingsOf(headers: RequestHeaders): Map<string, string[]> | null {
  const known = underscoreSpellings.get(headers);
  if (known !== undefined) return known;
  let byDashed: Map<string, string[]> | null = null;
  for (const sent in headers) {
    if (!sent.includes('_') || !Object.hasOwn(headers, sent) || headers[sent] === undefined) continue;
    byDashed ??= new Map();
    const canonical = asOriginsReadIt(sent);
    const spellings = byDashed.get(canonical);
    if (spellings === undefined) byDashed.set(canonical, [sent]);
    else spellings.push(sent);
  }
  underscoreSpellings.set(headers, byDashed);
  return byDashed;
}

/**
 * A request field (`name` in lower case) as CGI-style origins read it. PHP, Rack and WSGI servers put
 * `Accept-Language` and `Accept_Language` in one variable (HTTP_ACCEPT_LANGUAGE), and the gateway passes
 * both on, so to such an origin every spelling with `_` for `-` is the field. Returns the field's own
 * value when no other spelling was sent (nearly every request); otherwise every spelling sent with its
 * value, sorted by spelling, each as `<spelling>\n<value>\n`: no header value holds a line break, so no
 * single value reads as several spellings.
 */
export function fieldAsOriginsReadIt(headers: RequestHeaders, name: string): string | string[] | undefined {
  const own = sentHeader(headers, name);
  const canonical = asOriginsReadIt(name);
  const underscored = underscoreSpellingsOf(headers)?.get(canonical);
  const dashedSent = canonical !== name && sentHeader(headers, canonical) !== undefined;
  if (underscored === undefined && !dashedSent) return own;
  const spellings = new Set(underscored);
  if (dashedSent) spellings.add(canonical);
  spellings.delete(name);
  if (spellings.size === 0) return own;
  if (own !== undefined) spellings.add(name);
  let read = '';
  for (const spelling of [...spellings].sort()) {
    const value = headers[spelling]!;
    read += `${spelling}\n${Array.isArray(value) ? value.join(', ') : value}\n`;
  }
  return read;
}
