/**
 * Which host table a request's Host header is looked up in, as a gateway does it: a host under a
 * platform base domain is only ever the subdomain host `<label>.<base>` (no custom domain can shadow
 * it); any other host is a custom domain. Any case, an optional port and a trailing dot are accepted.
 */
export type HostLookup =
  | { kind: 'subdomain'; host: string; label: string }
  | { kind: 'custom_domain'; host: string }
  /**
   * missing: no Host header; ip_literal: an IPv6 literal; base_domain: a base domain itself (also one
   * under another base domain, and a name under a base domain that is the parent of another), or more
   * than one label under one (no tenant is ever served there).
   */
  | {
      kind: 'none';
      host: string;
      /** malformed: not `host[:port]` (see hostHeaderName). */
      reason: 'missing' | 'malformed' | 'ip_literal' | 'base_domain';
    };

/**
 * A Host header (or HTTP/2 :authority) as RFC 9110 allows it for a tenant: a DNS-style name (letters,
 * digits, `-`, `_`, dots, one trailing dot) or a bracketed IP literal, then an optional `:port`. Anything
 * else (userinfo `a@b`, two colons, spaces, `/`, `\`) is refused: read from its first or its last colon,
 * such a header names two different hosts.
 */
const HOST_HEADER = /^(?:[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.?|\[[0-9A-Fa-f:.]+\])(?::[0-9]{0,5})?$/;

/**
 * The host name a Host header names: lower-case, without port or trailing dot (an IP literal keeps its
 * brackets). undefined when the header is not `host[:port]`. The one reading of a Host header: tenant
 * lookup, `match.hosts` and a redirect's `${host}` all use it.
 */
export function hostHeaderName(hostHeader: string): string | undefined {
  if (!HOST_HEADER.test(hostHeader)) return undefined;
  let end = hostHeader.charCodeAt(0) === 91 ? hostHeader.indexOf(']') + 1 : hostHeader.indexOf(':');
  if (end < 0) end = hostHeader.length;
  if (hostHeader.charCodeAt(end - 1) === 46) end--; // trailing "."
  return (end === hostHeader.length ? hostHeader : hostHeader.slice(0, end)).toLowerCase();
}

/**
 * The Host an origin gets from a route with preserve_host: the name the tenant was resolved from
 * (hostHeaderName: lower case, no trailing dot) and the client's port when it is one a listener could
 * have (1–65535, written without leading zeros); undefined when the header is not `host[:port]`.
 */
export function preservedHost(hostHeader: string): string | undefined {
  const name = hostHeaderName(hostHeader);
  if (name === undefined) return undefined;
  const colon = hostHeader.lastIndexOf(':');
  // An IP literal's own colons are inside its brackets.
  if (colon < 0 || colon < hostHeader.lastIndexOf(']')) return name;
  const port = Number(hostHeader.slice(colon + 1));
  return port >= 1 && port <= 65_535 ? `${name}:${port}` : name;
}

/** `baseDomains` lower-case. */
export function lookupHost(hostHeader: string | undefined, baseDomains: readonly string[]): HostLookup {
  if (hostHeader === undefined || hostHeader === '') return { kind: 'none', host: '', reason: 'missing' };
  const host = hostHeaderName(hostHeader);
  if (host === undefined) return { kind: 'none', host: hostHeader, reason: 'malformed' };
  if (host.charCodeAt(0) === 91) return { kind: 'none', host, reason: 'ip_literal' }; // "["
  let underBase = false;
  let aboveBase = false;
  let subdomainLabel: string | undefined;
  for (const base of baseDomains) {
    if (host.length <= base.length) {
      // A base domain nested under another (`eu.vantageedge.dev`, `apps.eu.vantageedge.dev` beside
      // `vantageedge.dev`), and each name between them, is the parent of every tenant host under it:
      // no tenant is served there, whatever its subdomain.
      if (host === base) return { kind: 'none', host, reason: 'base_domain' };
      if (base.endsWith(host) && base.charCodeAt(base.length - host.length - 1) === 46) aboveBase = true;
      continue;
    }
    if (!host.endsWith(base) || host.charCodeAt(host.length - base.length - 1) !== 46) continue;
    underBase = true;
    const label = host.slice(0, host.length - base.length - 1);
    if (label.indexOf('.') < 0) subdomainLabel = label;
  }
  if (subdomainLabel !== undefined && !aboveBase) return { kind: 'subdomain', host, label: subdomainLabel };
  return underBase ? { kind: 'none', host, reason: 'base_domain' } : { kind: 'custom_domain', host };
}
