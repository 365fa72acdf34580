import type { RouteConfig } from '../domain/gateway-config.js';
import type { IpRules } from '../domain/route-policies.js';

type Protection = Pick<RouteConfig, 'auth_mode' | 'required_scopes' | 'require_tenant_org'> &
  Partial<
    Pick<
      RouteConfig,
      'id' | 'ip_rules' | 'rate_limit' | 'allow_any_authenticated_user' | 'fixed_response' | 'cors'
    >
  >;

/** The authentication part of a route's protection. */
type Authentication = Pick<RouteConfig, 'auth_mode' | 'required_scopes' | 'require_tenant_org'> &
  Partial<Pick<RouteConfig, 'allow_any_authenticated_user'>>;

/** The tenant-wide settings.ip_rules: what a route without its own ip_rules applies. */
export type TenantIpRules = IpRules | null | undefined;

/**
 * A route's protection as the matcher compares it per request: its IP rules (its own, else the
 * tenant's) and its rate limit as numbers (0: none). IP rules are equal when their content is: each is
 * serialised once, when the routes are compiled (serialising both on every comparison cost a request
 * to a path that 1,000 routes with equal 400-range IP rules answer ≈ 80 ms of the replica's event loop).
 * A rate limit is equal only to itself: a route's limit counts on that route's own counters, so two
 * routes limited alike still give a client two allowances.
 */
export interface ComparableProtection {
  readonly auth: Authentication;
  readonly ipRules: number;
  readonly rateLimit: number;
  /** Its CORS policy (0: none), numbered by content as IP rules are. */
  readonly cors: number;
  /** The route answers itself (fixed_response): no request it matches reaches the origin. */
  readonly answersItself: boolean;
}

/** Makes the ComparableProtection of each route of one tenant version (numbers are per instance). */
export class ProtectionKeys {
  readonly #tenantIpRules: TenantIpRules;
  readonly #byObject = new Map<object, number>();
  readonly #byJson = new Map<string, number>();
  /** Each route's rate limit (by route id, else by the policy itself): its counters are the route's own. */
  readonly #limits = new Map<string | object, number>();

  constructor(tenantIpRules?: TenantIpRules) {
    this.#tenantIpRules = tenantIpRules;
  }

  of(route: Protection): ComparableProtection {
    return {
      auth: route,
      ipRules: this.#policy(route.ip_rules ?? this.#tenantIpRules),
      rateLimit: this.#limit(route),
      cors: this.#policy(route.cors),
      answersItself: route.fixed_response !== null && route.fixed_response !== undefined,
    };
  }

  #limit({ id, rate_limit: policy }: Protection): number {
    if (policy === null || policy === undefined) return 0;
    const counters = id ?? policy;
    let number = this.#limits.get(counters);
    if (number === undefined) {
      number = this.#limits.size + 1;
      this.#limits.set(counters, number);
    }
    return number;
  }

  #policy(policy: object | null | undefined): number {
    if (policy === null || policy === undefined) return 0;
    const known = this.#byObject.get(policy);
    if (known !== undefined) return known;
    const json = JSON.stringify(policy);
    const id = this.#byJson.get(json) ?? this.#byJson.size + 1;
    this.#byJson.set(json, id);
    this.#byObject.set(policy, id);
    return id;
  }
}

/**
 * Does route `a` protect at least as much as route `b`: every request `a` admits, `b` would admit too?
 * Authentication: public is the weakest; otherwise the modes must be the same (or `b` accepts either
 * credential of jwt_or_apikey while `a` demands one of them), `a` must require every scope `b` requires,
 * a Clerk org requirement on `b` must be on `a` too, and `a` may admit any Clerk user only if `b` does.
 * IP rules (a route's own, else the tenant's): `b` has none, or `a` has the very same (two different
 * address lists cannot be ordered). Rate limit: `b` has none, or `a` is `b` (each route's limit has
 * counters of its own). CORS: `a` has none (the gateway lets no other site read its answers), or the
 * very same as `b` (two different lists of sites cannot be ordered). A route that answers itself (a
 * `fixed_response`, often a block: Kong's request-termination) keeps every request from the origin: `a`
 * covers it only by answering itself too. Anything else is not comparable.
 */
export function covers(a: ComparableProtection, b: ComparableProtection): boolean {
  return (
    authenticationCovers(a.auth, b.auth) &&
    policyCovers(a.ipRules, b.ipRules) &&
    policyCovers(a.rateLimit, b.rateLimit) &&
    (a.cors === 0 || a.cors === b.cors) &&
    (a.answersItself || !b.answersItself)
  );
}

/** covers() for two routes alone. */
export function protectsAtLeastAsMuch(a: Protection, b: Protection, tenantIpRules?: TenantIpRules): boolean {
  const keys = new ProtectionKeys(tenantIpRules);
  return covers(keys.of(a), keys.of(b));
}

function authenticationCovers(a: Authentication, b: Authentication): boolean {
  if (b.auth_mode === 'public') return true;
  if (a.auth_mode === 'public') return false;
  const modeCovers =
    a.auth_mode === b.auth_mode ||
    (b.auth_mode === 'jwt_or_apikey' &&
      (a.auth_mode === 'jwt_required' || a.auth_mode === 'apikey_required'));
  if (!modeCovers) return false;
  if (b.require_tenant_org && !a.require_tenant_org) return false;
  // Any Clerk user, of any org or none, against the tenant's own users (its org's members, its user list).
  if (admitsAnyClerkUser(a) && !admitsAnyClerkUser(b)) return false;
  for (const scope of b.required_scopes) if (!a.required_scopes.includes(scope)) return false;
  return true;
}

function admitsAnyClerkUser(auth: Authentication): boolean {
  return auth.allow_any_authenticated_user === true && auth.auth_mode !== 'apikey_required';
}

function policyCovers(a: number, b: number): boolean {
  return b === 0 || a === b;
}

/** True when every route protects exactly as much as every other (then no reading can matter). */
export function uniformProtection(routes: readonly ComparableProtection[]): boolean {
  const first = routes[0];
  if (first === undefined) return true;
  return routes.every((route) => covers(route, first) && covers(first, route));
}
