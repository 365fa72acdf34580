/**
 * Which host table a request's Host header is looked up in, as a gateway does it: a host under a
 * platform base domain is only ever the subdomain host `<label>.<base>` (no custom domain can shadow
 * it); any other host is a custom domain. Any case, an optional port and a trailing dot are accepted.
 */
export type HostLookup =
  | { kind: 'subdomain'; host: string; label: string }
  | { kind: 'custom_domain'; host: string }
  /**
   * missing: no Host header; ip_literal: an IPv6 literal; base_domain: a base domain itself, or more
   * than one label under one (no tenant is ever served there).
   */
  | { kind: 'none'; host: string; reason: 'missing' | 'ip_literal' | 'base_domain' };

/** `baseDomains` lower-case. */
export function lookupHost(hostHeader: string | undefined, baseDomains: readonly string[]): HostLookup {
  if (hostHeader === undefined || hostHeader === '') return { kind: 'none', host: '', reason: 'missing' };
  if (hostHeader.charCodeAt(0) === 91) return { kind: 'none', host: hostHeader, reason: 'ip_literal' }; // "["
  let end = hostHeader.indexOf(':');
  if (end < 0) end = hostHeader.length;
  if (hostHeader.charCodeAt(end - 1) === 46) end--; // trailing "."
  const host = (end === hostHeader.length ? hostHeader : hostHeader.slice(0, end)).toLowerCase();
  let underBase = false;
  for (const base of baseDomains) {
    if (host.length <= base.length) {
      if (host === base) underBase = true;
      continue;
    }
    if (!host.endsWith(base) || host.charCodeAt(host.length - base.length - 1) !== 46) continue;
    underBase = true;
    const label = host.slice(0, host.length - base.length - 1);
    if (label.indexOf('.') < 0) return { kind: 'subdomain', host, label };
  }
  return underBase ? { kind: 'none', host, reason: 'base_domain' } : { kind: 'custom_domain', host };
}
