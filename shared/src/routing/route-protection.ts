import type { RouteConfig } from '../domain/gateway-config.js';

type Protection = Pick<RouteConfig, 'auth_mode' | 'required_scopes' | 'require_tenant_org'>;

/**
 * Does route `a` protect at least as much as route `b`: every request `a` admits, `b` would admit too?
 * public is the weakest; otherwise the modes must be the same (or `b` accepts either credential of
 * jwt_or_apikey while `a` demands one of them), `a` must require every scope `b` requires, and a Clerk
 * org requirement on `b` must be on `a` too. Anything else is not comparable.
 */
export function protectsAtLeastAsMuch(a: Protection, b: Protection): boolean {
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

/** True when every route protects exactly as much as every other (then no reading can matter). */
export function uniformProtection(routes: readonly Protection[]): boolean {
  const first = routes[0];
  if (first === undefined) return true;
  return routes.every((route) => protectsAtLeastAsMuch(route, first) && protectsAtLeastAsMuch(first, route));
}
