import type { ExplainDecision, RequestExplanation, RouteVerdict } from '../domain/request-explanation.js';

/**
 * An answer of the admin API's POST …/explain, at position 12, for a GET of `path` on `host` that no
 * route takes: every step after the routes is empty. For the tests of what shows an explanation.
 */
export function explanationWithoutRoute(request: {
  tenantId: string;
  host: string;
  /** Whether the host is one of the tenant's (by its subdomain), and why. */
  resolves?: boolean;
  hostReason: string;
  path: string;
  routes?: RouteVerdict[];
  decision: ExplainDecision;
}): RequestExplanation {
  return {
    tenant_id: request.tenantId,
    position: '12',
    version: '12',
    request: { method: 'GET', host: request.host, path: request.path, query: '' },
    host: {
      resolves: request.resolves ?? true,
      kind: 'subdomain',
      host: request.host,
      reason: request.hostReason,
    },
    path: { normalized: request.path, reason: null },
    route: null,
    routes: request.routes ?? [],
    auth: null,
    rate_limits: null,
    cache: null,
    upstream: null,
    policies: null,
    decision: request.decision,
  };
}
