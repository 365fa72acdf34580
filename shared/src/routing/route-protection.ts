import type { RouteConfig } from '../domain/gateway-config.js';
import type { IpRules } from '../domain/route-policies.js';

type Protection = Pick<RouteConfig, 'auth_mode' | 'required_scopes' | 'require_tenant_org'> &
  Partial<Pick<RouteConfig, 'ip_rules' | 'rate_limit'>>;

/** The tenant-wide settings.ip_rules: what a route without its own ip_rules applies. */
export type TenantIpRules = IpRules | null | undefined;

/**
 * Does route `a` protect at least as much as route `b`: every request `a` admits, `b` would admit too?
 * Authentication: public is the weakest; otherwise the modes must be the same (or `b` accepts either
 * credential of jwt_or_apikey while `a` demands one of them), `a` must require every scope `b` requires,
 * and a Clerk org requirement on `b` must be on `a` too. IP rules (a route's own, else the tenant's)
 * and rate limits: `b` has none, or `a` has the very same (two different address lists or limits
 * cannot be ordered). Anything else is not comparable.
 */
export function protectsAtLeastAsMuch(a: Protection, b: Protection, tenantIpRules?: TenantIpRules): boolean {
  return (
    authenticationCovers(a, b) &&
    policyCovers(a.ip_rules ?? tenantIpRules, b.ip_rules ?? tenantIpRules) &&
    policyCovers(a.rate_limit, b.rate_limit)
  );
}

function authenticationCovers(a: Protection, b: Protection): boolean {
  if (b.auth_mode === 'public') return true;
  if (a.auth_mode === 'public') return false;
  const modeCovers =
    a.auth_mode === b.auth_mode ||
    (b.auth_mode === 'jwt_or_apikey' &&
      (a.auth_mode === 'jwt_required' || a.auth_mode === 'apikey_required'));
  if (!modeCovers) return false;
  if (b.require_tenant_org && !a.require_tenant_org) return false;
  for (const scope of b.required_scopes) if (!a.required_scopes.includes(scope)) return false;
  return true;
}

function policyCovers(a: unknown, b: unknown): boolean {
  if (b === null || b === undefined) return true;
  return a !== null && a !== undefined && (a === b || JSON.stringify(a) === JSON.stringify(b));
}

/** True when every route protects exactly as much as every other (then no reading can matter). */
export function uniformProtection(routes: readonly Protection[], tenantIpRules?: TenantIpRules): boolean {
  const first = routes[0];
  if (first === undefined) return true;
  return routes.every(
    (route) =>
      protectsAtLeastAsMuch(route, first, tenantIpRules) &&
      protectsAtLeastAsMuch(first, route, tenantIpRules),
  );
}
