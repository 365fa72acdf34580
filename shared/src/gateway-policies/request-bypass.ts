import { cookieNameAsPhpReadsIt, fieldAsOriginsReadIt } from '../http/cgi-spellings.js';
import { asksForEventStream } from '../http/event-streams.js';
import { formPairs } from '../http/form-decoding.js';
import { cookieHeader, headerList } from '../http/header-values.js';
import type { NamedParameters } from '../http/query-parameter-spellings.js';
import type { CacheRequest } from './cache-key.js';
import type { CompiledCachePolicy } from './compile-cache-policy.js';

const NO_CACHE_REQUEST = /no-cache|no-store/i;
const PRAGMA_NO_CACHE = /no-cache/i;
const NO_STORE_REQUEST = /no-store/i;

/** Why a request is not served from (or stored to) the cache; null when it may be. */
export function requestBypassReason(policy: CompiledCachePolicy, request: CacheRequest): string | null {
  if (request.method !== 'GET' && request.method !== 'HEAD') return 'method';
  if (request.hasBody) return 'request_body';
  const { headers } = request;
  // A client asking for server-sent events never waits behind another client's stream (which never ends)
  // for a response to share.
  if (asksForEventStream(headers.accept)) return 'event_stream';
  const cacheControl = headerList(headers['cache-control']);
  if (policy.mode === 'standard') {
    // no-cache, max-age, … are requirements on the stored response (the gateway's
    // request-directives.ts); no-store forbids storing anything of this exchange.
    if (cacheControl && NO_STORE_REQUEST.test(cacheControl)) return 'request_no_store';
  } else {
    if (cacheControl && NO_CACHE_REQUEST.test(cacheControl)) return 'request_no_cache';
    const pragma = headerList(headers.pragma);
    if (pragma && PRAGMA_NO_CACHE.test(pragma)) return 'request_no_cache';
  }
  // Any spelling the origin reads as the header (X_Debug is X-Debug to PHP, Rack, WSGI).
  for (const name of policy.bypassHeaders)
    if (fieldAsOriginsReadIt(headers, name) !== undefined) return 'bypass_header';
  const cookie = policy.bypassCookies.length > 0 ? cookieHeader(headers.cookie) : undefined;
  if (cookie) {
    // Each name as sent and as PHP origins read it (`wordpress.logged_in` is `wordpress_logged_in` to them).
    const names = new Set<string>();
    for (const pair of cookie.split(';')) {
      const name = pair.split('=', 1)[0]!.trim();
      names.add(name).add(cookieNameAsPhpReadsIt(name));
    }
    for (const name of policy.bypassCookies) if (names.has(name)) return 'bypass_cookie';
  }
  if (policy.bypassQueryParams !== null && request.query !== '') {
    if (namesAnyOf(policy.bypassQueryParams, request.query)) return 'bypass_query';
  }
  return null;
}

/**
 * Whether the query has a parameter `named` holds, in any spelling an origin reads as its name
 * (`Preview`, `preview[]`, `preview[0]`: parameterKey), also after a `;` (Go before 1.17, Python
 * before 3.9.2 and Perl's CGI separate pairs with it). An origin reads `?Preview=1` as `preview` and
 * answers it so: stored, a route keyed on its path alone would serve that answer to every client.
 */
function namesAnyOf(named: NamedParameters<string>, query: string): boolean {
  for (const [name] of formPairs(query.replaceAll(';', '&')))
    if (named.entryOf(name) !== undefined) return true;
  return false;
}
