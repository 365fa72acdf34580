import { randomBytes, randomUUID } from 'node:crypto';
import { type RouteConfig, type TenantSnapshot, tenantSnapshot } from '../domain/gateway-config.js';
import { NO_ROUTE_POLICIES } from '../domain/route-policies.js';
import type { BusHealth, SnapshotBus, SnapshotHandlers, SnapshotMessage } from './port.js';

/** A valid snapshot for tests; `routes` adds that many routes (random paths compress poorly). */
export function sampleSnapshot(
  tenantId: string,
  version: bigint,
  {
    routes = 1,
    name = 'Acme',
    randomPaths = false,
  }: { routes?: number; name?: string; randomPaths?: boolean } = {},
): TenantSnapshot {
  const originId = randomUUID();
  const routeList: RouteConfig[] = [];
  for (let index = 0; index < routes; index += 1) {
    const path = randomPaths ? `/r/${randomBytes(48).toString('base64url')}` : `/v1/resource-${index}/:id`;
    routeList.push({
      id: randomUUID(),
      origin_id: originId,
      path_pattern: path,
      methods: ['GET'],
      priority: 0,
      auth_mode: 'public',
      websocket_token: 'header',
      required_scopes: [],
      require_tenant_org: true,
      allow_any_authenticated_user: false,
      strip_prefix: null,
      rate_limit: null,
      cache_policy: null,
      ...NO_ROUTE_POLICIES,
    });
  }
  return tenantSnapshot.parse({
    schema_version: 1,
    tenant_id: tenantId,
    version: version.toString(),
    event_time: new Date().toISOString(),
    tenant: { id: tenantId, name, subdomain: `t${tenantId.slice(0, 8)}`, clerk_org_id: null, settings: {} },
    origins: [{ id: originId, name: 'main', targets: [{ url: 'http://127.0.0.1:9/' }] }],
    routes: routeList,
    api_keys: [],
  });
}

export function snapshotMessage(snapshot: TenantSnapshot): SnapshotMessage {
  return { kind: 'snapshot', tenantId: snapshot.tenant_id, version: BigInt(snapshot.version), snapshot };
}

/** Polls until `check` returns true (or throws after `timeoutMs` with `what`). */
export async function eventually(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Subscribes and records everything the bus delivers. */
export async function recordSubscription(bus: SnapshotBus) {
  const messages: SnapshotMessage[] = [];
  const health: BusHealth[] = [];
  const invalid: string[] = [];
  let caughtUpAfter: number | undefined;
  const handlers: SnapshotHandlers = {
    onMessage: (message) => {
      messages.push(message);
    },
    onCaughtUp: () => {
      caughtUpAfter = messages.length;
    },
    onHealth: (value) => health.push(value),
    onInvalidMessage: (problem) => invalid.push(problem.reason),
  };
  const subscription = await bus.subscribe(handlers);
  return {
    messages,
    health,
    invalid,
    subscription,
    /** How many messages had been delivered when onCaughtUp fired (undefined: not yet). */
    caughtUpAfter: () => caughtUpAfter,
    versionsOf: (tenantId: string) =>
      messages.filter((message) => message.tenantId === tenantId).map((message) => message.version),
  };
}
