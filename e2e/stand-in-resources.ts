/** Resources as the admin API returns them, for the stand-in admin API behind the console. */

const CREATED = '2026-12-01T00:00:00.000Z';

/** A tenant with the default settings, created (and last updated) on 2026-12-01. */
export function tenantResource(id: string, name: string, subdomain: string) {
  return {
    id,
    name,
    subdomain,
    settings: { rate_limit: null, oidc: null, service_accounts: [], ip_rules: { allow: [], deny: [] } },
    clerk_org_id: null,
    created_at: CREATED,
    updated_at: CREATED,
  };
}

/** The tenant's `orders` origin: one target, round robin. */
export function ordersOrigin(id: string, tenantId: string) {
  return {
    id,
    tenant_id: tenantId,
    name: 'orders',
    targets: [{ url: 'http://orders.internal:8080', weight: 1 }],
    load_balancing: { algorithm: 'round_robin' },
    timeout_seconds: 30,
  };
}

/** A public route with no policies of its own. */
export function routeResource<OriginId extends string | null>(route: {
  id: string;
  tenant_id: string;
  origin_id: OriginId;
  path_pattern: string;
}) {
  return {
    ...route,
    methods: [] as string[],
    priority: 0,
    auth_mode: 'public',
    required_scopes: [] as string[],
    strip_prefix: null,
    rate_limit: null,
    cache_policy: null,
    allow_any_authenticated_user: false,
    require_tenant_org: true,
  };
}
