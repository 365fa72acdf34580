import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { singleHeader } from '@vantageedge/shared/http/header-values';
import { arrivedOverHttp2 } from '@vantageedge/shared/http/request-version';
import { hostHeaderName } from '@vantageedge/shared/routing/host-lookup';

/**
 * The host a request is for: HTTP/2's `:authority` pseudo-header (which HTTP/2 clients send instead of
 * Host; node's compatibility API does not copy it into `host`), else the Host header. Over HTTP/2 a Host
 * beside `:authority` is never read (RFC 9113 §8.3.1); one naming another entity is refused
 * (namesConflictingHosts).
 */
export function requestAuthority(headers: IncomingHttpHeaders): string | undefined {
  return singleHeader(headers[':authority']) ?? singleHeader(headers.host);
}

/**
 * The request's Host is not `host[:port]` (`acme.example.com:@evil.com`, a space, two colons): no tenant
 * is looked up for it (lookupHost), and it is refused 400 rather than 404, as a malformed request.
 */
export function namesMalformedHost(headers: IncomingHttpHeaders): boolean {
  const authority = requestAuthority(headers);
  return authority !== undefined && authority !== '' && hostHeaderName(authority) === undefined;
}

export const MISSING_HOST_MESSAGE = 'an HTTP/1.1 request must name its host in a Host header';

/**
 * An HTTP/1.1 request without a Host line (RFC 9112 §3.2: answered 400). The listeners leave this check to
 * the gateway (node's own refusal has no error code); HTTP/1.0 may omit Host, HTTP/2 has :authority.
 */
export function omitsRequiredHost(req: IncomingMessage): boolean {
  return req.headers.host === undefined && req.httpVersion === '1.1' && !arrivedOverHttp2(req);
}

/**
 * The request names its host more than once: two Host lines (RFC 9112 §3.2), or over HTTP/2 a Host that
 * names another entity than :authority (RFC 9113 §8.3.1: compared normalised, so `acme.example:443`
 * and `ACME.example` over https agree). Such a request must be refused, not served by one reading: a
 * proxy in front that reads the other one would have applied another tenant's rules to it.
 */
export function namesConflictingHosts(req: IncomingMessage): boolean {
  const raw = req.rawHeaders;
  let hostLines = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 4 && name.toLowerCase() === 'host') hostLines++;
  }
  if (hostLines > 1) return true;
  if (hostLines === 0 || req.httpVersionMajor !== 2) return false;
  const authority = singleHeader(req.headers[':authority']);
  if (authority === undefined) return false;
  const host = singleHeader(req.headers.host);
  const scheme = singleHeader(req.headers[':scheme']);
  return host === undefined || normalizedAuthority(authority, scheme) !== normalizedAuthority(host, scheme);
}

const DEFAULT_PORTS: Readonly<Record<string, string>> = { http: '80', https: '443' };

/** Two authorities name the same entity of `scheme`'s, compared as RFC 3986 normalises them. */
export function namesSameAuthority(one: string, other: string, scheme: string): boolean {
  return normalizedAuthority(one, scheme) === normalizedAuthority(other, scheme);
}

/**
 * An authority as RFC 3986 §6.2.2–6.2.3 normalises it for comparison (RFC 9113 §8.3.1 compares Host and
 * :authority so): lower case, without a port that is empty or the scheme's default. A trailing dot is
 * kept: it names another URI, even though it resolves to the same tenant.
 */
function normalizedAuthority(authority: string, scheme: string | undefined): string {
  const lower = authority.toLowerCase();
  const colon = lower.lastIndexOf(':');
  // An IP literal's own colons are inside its brackets.
  if (colon < 0 || colon < lower.lastIndexOf(']')) return lower;
  const port = lower.slice(colon + 1);
  const isDefault = port === '' || (scheme !== undefined && port === DEFAULT_PORTS[scheme.toLowerCase()]);
  return isDefault ? lower.slice(0, colon) : lower;
}
