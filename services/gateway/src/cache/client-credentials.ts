import type { IncomingHttpHeaders } from 'node:http';
import { isCredentialHeader, isCredentialQueryParam } from '@vantageedge/shared/domain/credential-headers';
import type { QueryTransform } from '@vantageedge/shared/domain/route-policies';
import { asOriginsReadIt } from '@vantageedge/shared/http/cgi-spellings';
import { formPairs } from '@vantageedge/shared/http/form-decoding';
import {
  dottedParameterKey,
  namedParameterKeys,
  parameterKey,
} from '@vantageedge/shared/http/query-parameter-spellings';
import { originSeesGatewayValue } from '../proxy/forwarded-headers.js';

const NONE: readonly string[] = [];

/**
 * The credential headers of a client's own (X-Auth-Token, Api-Key, X-Access-Token, …: isCredentialHeader)
 * a request carries to the origin, by the names origins read them as (`X_Auth_Token` is X-Auth-Token to
 * CGI-style ones). Not Authorization and Cookie, which have rules of their own, nor a header the gateway
 * drops or writes itself (X-Api-Key) or one the route's transform wrote alone (`routeHeaders`: its value
 * is the tenant's, the same for every client). An origin checking callers by one answers that caller.
 */
export function clientCredentialHeaders(
  headers: IncomingHttpHeaders,
  routeHeaders: readonly string[] | undefined,
): readonly string[] {
  let found: string[] | undefined;
  for (const name in headers) {
    if (name === 'authorization' || name === 'cookie') continue;
    const read = asOriginsReadIt(name);
    if (
      !isCredentialHeader(read) ||
      originSeesGatewayValue(read) ||
      writtenByRouteAlone(headers, name, routeHeaders)
    )
      continue;
    found ??= [];
    if (!found.includes(read)) found.push(read);
  }
  return found ?? NONE;
}

/**
 * The route's transform wrote the header and no line of the client's is left beside it: a line `add`
 * appends to the client's header goes after the client's own, which the origin reads first.
 */
function writtenByRouteAlone(
  headers: IncomingHttpHeaders,
  name: string,
  routeHeaders: readonly string[] | undefined,
): boolean {
  return routeHeaders?.includes(name) === true && !Array.isArray(headers[name]);
}

/**
 * Whether the client's query (raw, without '?') carries a credential parameter to the origin
 * (`access_token`, `api_key`, `sig`, …: isCredentialQueryParam), read by its name as origins read it
 * (`Access_Token`, `api_key[]`, PHP's `api.key`, ASP.NET Core's `sig.v`; pairs after a `;` too). Not
 * one the route's `query` transform removes or sets: the origin gets the route's value (the tenant's,
 * the same for every client) or none. A line the transform `add`s goes after the client's own, which
 * origins read first.
 */
export function carriesCredentialQuery(query: string, transform: QueryTransform | null | undefined): boolean {
  if (query === '') return false;
  let replaced: Set<string> | undefined;
  const clientCredential = (key: string): boolean => {
    const bracket = key.indexOf('[');
    const name = bracket < 0 ? key : key.slice(0, bracket);
    if (!isCredentialQueryParam(name)) return false;
    replaced ??= routeReplacedParameters(transform);
    return !replaced.has(name);
  };
  for (const [sent] of formPairs(query.replaceAll(';', '&'))) {
    if (clientCredential(parameterKey(sent))) return true;
    // ASP.NET Core and Spring read `sig.v` as `sig[v]`, where PHP reads `sig_v`.
    const dotted = dottedParameterKey(sent);
    if (dotted !== undefined && clientCredential(dotted)) return true;
  }
  return false;
}

/** The parameter names (namedParameterKeys) a route's query transform removes or sets. */
function routeReplacedParameters(transform: QueryTransform | null | undefined): Set<string> {
  if (transform === null || transform === undefined) return new Set();
  return new Set([...transform.remove, ...Object.keys(transform.set)].flatMap(namedParameterKeys));
}
