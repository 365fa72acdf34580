import { hash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { codingSetName, requestAcceptedCodings } from '../http/accept-encoding.js';
import { fieldAsOriginsReadIt } from '../http/cgi-spellings.js';
import type { CompiledCachePolicy } from './compile-cache-policy.js';
import { originAsKeyed } from './cors-rules.js';

/**
 * What the cache needs of a request: the scheme and host it was made to, the path after normalisation
 * (no query), the raw query, and the client's end-to-end headers (endToEndRequestHeaders: no hop-by-hop
 * fields, none the client named in Connection). Headers the gateway writes or drops toward the origin
 * (X-Forwarded-*, X-Real-IP, …) are not what the origin received: a response varying on one is not
 * stored (vary_gateway_header).
 */
export interface CacheRequest {
  readonly method: string;
  /**
   * The client's scheme as the gateway determined it ('http' | 'https'; a trusted proxy's
   * X-Forwarded-Proto): an origin may answer http and https differently (a redirect to https). The
   * gateway always sets it; '' when absent.
   */
  readonly scheme?: string | undefined;
  /**
   * The host the origin is told the client asked for, as it gets it (X-Forwarded-Host, Forwarded host=):
   * the Host (or :authority) as spelled, port, case and trailing dot included (originFacingHost). A
   * tenant's custom domain and its platform subdomain are different keys, and so is a port one client
   * chose that an origin may reflect into links. The gateway always sets it; '' when absent.
   */
  readonly host?: string | undefined;
  /**
   * What a trusted proxy told the origin beyond the scheme and host (its X-Forwarded-Port,
   * X-Forwarded-Prefix, other scheme headers and Forwarded elements, originFacingForwarding): origins
   * build links from them and take the scheme from them. '' when absent.
   */
  readonly forwarding?: string | undefined;
  /**
   * The origin a route's traffic split chose for the request (its id): each origin of a split answers
   * for itself, and one origin's stored answer is never served to requests the weights gave another.
   * '' when the route has no split.
   */
  readonly origin?: string | undefined;
  readonly path: string;
  /** Without the leading '?'; '' when none. */
  readonly query: string;
  readonly headers: IncomingHttpHeaders;
  /**
   * The request headers the route's transform wrote (lower case): their values are the tenant's, the
   * same for every client, not a client's credential. Undefined when it wrote none.
   */
  readonly routeHeaders?: readonly string[] | undefined;
  /**
   * The request carries content (a GET with a body). The origin may read it (search APIs, frameworks
   * that merge body parameters into the query's), and the key cannot hold it: such a request bypasses.
   */
  readonly hasBody?: boolean | undefined;
  /**
   * The client's query carries a credential parameter the origin gets (`?access_token=`, `?api_key=`)
   * on a route whose key leaves the query out: the answer may be that caller's (the gateway's
   * carriesCredentialQuery). Storage then needs the origin's consent, as for Authorization.
   */
  readonly credentialQuery?: boolean | undefined;
}

/** The authenticated caller, for routes whose cached responses are per caller. */
export interface CacheIdentity {
  readonly userId?: string | undefined;
  readonly apiKeyId?: string | undefined;
}

/**
 * Part of every variant digest. Changing it makes every entry stored by an older key format
 * unreachable (they expire by TTL): entries stored before the Vary and Authorization rules were
 * enforced (k1), while repeated query parameters were sorted by value (k2: `?id=evil&id=1` was
 * stored under the key `?id=1&id=evil` now has), before the scheme and host were part of the key
 * (k3: an http request's redirect to https was served to https requests, one host's answer to
 * another's), or while the query was decoded before keying (k4: `?name=%E9` and `?name=%E8` both
 * decoded to U+FFFD and shared one entry), or while the host was normalised (k5: `Host: a.example:1`
 * was keyed as `a.example`, and an origin reflecting the port had it served to every client), or before
 * a trusted proxy's X-Forwarded-Port and -Prefix were part of the key (k6: a prefix one client had the
 * proxy pass on was in the links every client got), or while a header was keyed by its own spelling
 * only (k7: a CGI-style origin read `Accept_Language: de` as Accept-Language, and the answer was stored
 * for every client that sent none), or before the route's audience was part of the key (k8: a shared
 * route's members-only answer was served to anonymous clients once the route was made public), or
 * before the IP rules and the tenant's user sources were part of the audience (k9: an answer stored
 * for the addresses an allow list let in was served to every address once the list was dropped), or
 * before a traffic split's chosen origin was part of the key (k10: whichever origin filled an entry
 * first, the canary on its share of misses, answered every client of the route), or before a trusted
 * proxy's Forwarded and the route's cache_set_cookie were part of it (k11: a `host=` one client had the
 * proxy pass on was in the links every client got from an origin reading Forwarded, and a route that
 * stopped storing Set-Cookie still replayed the filling client's cookie to everyone; and the parts after
 * the origin were told apart by their place alone, so a route keyed per caller on its path met the
 * entries a query stored while it was shared), or while a variant was selected by the client's
 * Accept-Encoding as spelled (k12: a variant stored under `gzip, deflate` may hold a deflate body, a
 * coding of the origin's own, or one the filling client's `gzip;q=0` refused, which every client
 * accepting gzip would now select), must never be served.
 */
const KEY_FORMAT = 'k13';

// Digests are one-shot SHA-256 (crypto.hash: no Hash object per call, which cost several µs per
// lookup), truncated: 132 bits for a path, 192 bits for the rest of a key.

/**
 * A parameter name no origin reads as another one: letters, digits, `_`, `-`, `.`. Anything else
 * (an escape, `+`, brackets, non-ASCII) may decode to, or be folded into, a name that is also spelled
 * differently (`%61` is `a`, `a[]` is PHP's `a`, `%E9` and `%E8` are both U+FFFD to a UTF-8 reader).
 */
const PLAIN_NAME = /^[A-Za-z0-9_.-]+$/;

/**
 * The name two parameters must not share to be reordered. Case and `.`/`_` are folded because some
 * origins fold them (ASP.NET names are case-insensitive, PHP reads `a.b` as `a_b`).
 */
function foldedName(piece: string): string | null {
  const equals = piece.indexOf('=');
  const name = equals < 0 ? piece : piece.slice(0, equals);
  return PLAIN_NAME.test(name) ? name.toLowerCase().replaceAll('.', '_') : null;
}

/**
 * The raw query as part of the key: never decoded, so every two queries an origin receives
 * differently are different keys (`%E9` vs `%E8`, `+` vs `%20`, `debug` vs `debug=`). When every
 * parameter has a plain name, the raw `&`-separated pieces are sorted by name so `b=2&a=1` and
 * `a=1&b=2` are one key. The sort is stable and by (folded) name only: a repeated parameter keeps the
 * order of its values, since `id=evil&id=1` and `id=1&id=evil` are different requests to an origin
 * that reads the first (or the last) value. A query with any other name, an empty piece or a `;`
 * (a separator to some origins) is kept as it came: another order is another key. The two forms never
 * meet: a sorted query consists of plain pieces only, so it is never one kept as it came.
 */
export function sortedQuery(query: string): string {
  if (query === '' || query.includes(';')) return query;
  const pieces = query.split('&');
  const named: Array<[name: string, piece: string]> = [];
  for (const piece of pieces) {
    const name = foldedName(piece);
    if (name === null) return query;
    named.push([name, piece]);
  }
  named.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return named.map(([, piece]) => piece).join('&');
}

function headerValue(headers: IncomingHttpHeaders, name: string): string {
  const value = fieldAsOriginsReadIt(headers, name);
  return value === undefined ? '' : Array.isArray(value) ? value.join(', ') : value;
}

/** The Origin as the CORS stage reads it (its lines joined), undefined when absent. */
function sentOrigin(headers: IncomingHttpHeaders): string | undefined {
  const origin = headers.origin as string | string[] | undefined;
  return Array.isArray(origin) ? origin.join(', ') : origin;
}

/** `<length>:<value>`: parts that carry their length cannot be shifted into one another. */
function part(value: string): string {
  return `${value.length}:${value}`;
}

/** Digest of the path alone: the unit unsafe methods invalidate. */
export function pathDigest(path: string): string {
  return hash('sha256', path, 'base64url').slice(0, 22);
}

/**
 * Digest of everything else that selects a URL's entry (who the route admits, whether it stores
 * Set-Cookie, scheme, host, what a trusted proxy told the origin, the traffic split's chosen origin, the
 * route's response header transform, the key's shape, query unless the pattern is `path`, the policy's vary headers, the caller on per-caller
 * routes). Each part is length-prefixed so no crafted
 * value can make two different requests collide (e.g. a query that imitates a header part).
 * Returns null when the route is per caller and the caller is anonymous (such a request is not cached).
 */
export function variantDigest(
  policy: CompiledCachePolicy,
  request: CacheRequest,
  identity: CacheIdentity,
): string | null {
  let material =
    part(KEY_FORMAT) +
    part(policy.audience) +
    // Entries of a route storing Set-Cookie hold the filling client's cookie: once it stops, never served.
    part(policy.cacheSetCookie ? 'set-cookie' : '') +
    part(request.scheme ?? '') +
    part(request.host ?? '') +
    part(request.forwarding ?? '') +
    part(request.origin ?? '') +
    // Only on a route with a response header transform (`headers:…`, never a key shape): routes without
    // one keep the keys, and the stored answers, they had before transforms were keyed.
    (policy.responseHeaders === '' ? '' : part(policy.responseHeaders)) +
    // The shape of what follows (compileCachePolicy).
    part(policy.keyShape);
  if (policy.keyPattern !== 'path') material += part(sortedQuery(request.query));
  for (const name of policy.varyHeaders) {
    const value =
      name === 'origin' && policy.cors !== null
        ? originAsKeyed(policy.cors, sentOrigin(request.headers))
        : headerValue(request.headers, name);
    material += part(value);
  }
  if (policy.perCaller) {
    if (identity.userId) material += part(`user:${identity.userId}`);
    else if (identity.apiKeyId) material += part(`key:${identity.apiKeyId}`);
    else return null;
  }
  return hash('sha256', material, 'base64url').slice(0, 32);
}

/**
 * `a , b` → `a,b`: one pass over the client's value. (A regex matching spaces, a comma, spaces
 * backtracks over every run of spaces without a comma: quadratic, and a 15,000-space header held the
 * event loop for 170 ms.)
 */
function listWithoutSpaces(list: string): string {
  const items = list.split(',');
  for (let i = 0; i < items.length; i++) items[i] = items[i]!.trim();
  return items.join(',');
}

/**
 * The secondary key of a response that varies (RFC 9111 §4.1): the request's values of the header
 * fields the origin's Vary named, as the origin read them (fieldAsOriginsReadIt: `Accept_Language` too).
 * Several lines of a field are one list, whitespace around commas does not matter, and a field that is
 * absent never matches one that is present (even empty). Accept-Encoding is which of br, compress,
 * deflate, gzip and zstd the client accepts (requestAcceptedCodings): `gzip, x1` and `gzip, x2` are one
 * variant, so no client can take a URL's variants with spellings, and a stored coding is one every
 * client of its variant accepts (the fill stores no other: storageDecision). Origin too is read as
 * sent, on a CORS route as well (whose key reads it as the policy does, originAsKeyed): an origin that
 * says `Vary: Origin` built its answer from the Origin it was sent, and whoever filled a shared entry
 * (any client can send any Origin) would have that answer served to every other site.
 */
export function varySelector(varyOn: readonly string[], headers: IncomingHttpHeaders): string {
  let material = '';
  for (const name of varyOn) {
    if (name === 'accept-encoding') {
      const accepted = requestAcceptedCodings(headers);
      material +=
        accepted === undefined ? `${part(name)}-;` : `${part(name)}=${part(codingSetName(accepted))};`;
      continue;
    }
    const value = fieldAsOriginsReadIt(headers, name);
    if (value === undefined) {
      material += `${part(name)}-;`;
      continue;
    }
    material += `${part(name)}=${part(listWithoutSpaces(Array.isArray(value) ? value.join(',') : value))};`;
  }
  return hash('sha256', material, 'base64url').slice(0, 22);
}
