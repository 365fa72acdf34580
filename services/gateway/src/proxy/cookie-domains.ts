import type { CompiledTenant } from '../config/compiled-tenant.js';
import type { TenantResolver } from '../pipeline/gateway-handler.js';

/**
 * Keeps an origin's cookies on its tenant's hosts. A `Domain` attribute widens a cookie to every host
 * under that domain, so `Domain=vantageedge.dev` from one tenant's origin would reach every tenant
 * (and `Domain=globex.localhost` another one). A Domain is kept only when it is the request's host or
 * one of the tenant's own hosts above it (e.g. a custom domain `acme.example` on a request for
 * `api.acme.example`), and never when it is a platform base domain or a parent of one; otherwise the
 * attribute is removed and the browser stores the cookie for the request's host only. A host is the
 * tenant's own when this replica routes it to the tenant: its snapshot may still name a domain another
 * tenant holds (one it let go of, its release not applied yet, or a claim the other tenant won).
 */
export class CookieDomainGuard {
  readonly #baseDomains: readonly string[];
  readonly #tenants: TenantResolver;

  constructor(baseDomains: readonly string[], tenants: TenantResolver) {
    this.#baseDomains = baseDomains.map((domain) => domain.toLowerCase());
    this.#tenants = tenants;
  }

  /** The origin's Set-Cookie values with every Domain attribute the tenant may not use removed. */
  scope(
    setCookie: string | string[],
    hostHeader: string | undefined,
    tenant: CompiledTenant,
  ): string | string[] {
    const requestHost = hostOf(hostHeader);
    if (Array.isArray(setCookie))
      return setCookie.map((cookie) => this.#scopeOne(cookie, requestHost, tenant));
    return this.#scopeOne(setCookie, requestHost, tenant);
  }

  /**
   * An origin's Clear-Site-Data for a host under a platform base domain, without `"cookies"` and `"*"`:
   * browsers clear cookies for the whole registrable domain (the base domain), which would sign
   * visitors out of every tenant. `"cache"`, `"storage"` and `"executionContexts"` are the origin's own
   * (kept); on a tenant's custom domain everything is kept. undefined when nothing is left.
   */
  scopeClearSiteData(value: string | string[], hostHeader: string | undefined): string | undefined {
    const text = Array.isArray(value) ? value.join(',') : value;
    const requestHost = hostOf(hostHeader);
    if (!this.#baseDomains.some((base) => requestHost === base || requestHost.endsWith(`.${base}`)))
      return text;
    const kept = text
      .split(',')
      .map((directive) => directive.trim())
      .filter((directive) => directive !== '' && !/^"?(?:cookies|\*)"?$/i.test(directive));
    return kept.length === 0 ? undefined : kept.join(', ');
  }

  #scopeOne(cookie: string, requestHost: string, tenant: CompiledTenant): string {
    // Fast path: most cookies carry no Domain attribute at all.
    if (!/;\s*domain\s*=/i.test(cookie)) return cookie;
    const parts = cookie.split(';');
    const kept = [parts[0]!];
    for (let i = 1; i < parts.length; i++) {
      const part = parts[i]!;
      const equals = part.indexOf('=');
      const name = (equals < 0 ? part : part.slice(0, equals)).trim().toLowerCase();
      if (name === 'domain' && !this.#allowed(part.slice(equals + 1), requestHost, tenant)) continue;
      kept.push(part);
    }
    return kept.join(';');
  }

  #allowed(value: string, requestHost: string, tenant: CompiledTenant): boolean {
    const domain = value.trim().toLowerCase().replace(/^\./, '').replace(/\.$/, '');
    if (domain === '') return true; // an empty Domain is ignored by browsers: the cookie is host-only
    for (const base of this.#baseDomains) if (base === domain || base.endsWith(`.${domain}`)) return false;
    if (domain === requestHost) return true;
    return requestHost.endsWith(`.${domain}`) && this.#tenants.resolveHost(domain)?.id === tenant.id;
  }
}

function hostOf(hostHeader: string | undefined): string {
  if (hostHeader === undefined) return '';
  const colon = hostHeader.indexOf(':');
  const host = (colon < 0 ? hostHeader : hostHeader.slice(0, colon)).toLowerCase();
  return host.endsWith('.') ? host.slice(0, -1) : host;
}
