import { randomUUID } from 'node:crypto';
import type { ControlPlaneNewEvent, UserRole } from '@vantageedge/shared/domain/events';
import { streamName } from '@vantageedge/shared/domain/events';
import { originConfig, routeConfig, tenantSettings } from '@vantageedge/shared/domain/gateway-config';
import type { EventMetadata, EventStore } from '@vantageedge/shared/event-store/port';

/**
 * A realistic, seeded mix of control-plane events for tests and benchmarks: tenants with users,
 * origins, routes and api keys, then updates, rotations, revocations, removals, cache purges and
 * a few tenant deletions. Written straight to the event store (no command side needed).
 */

export interface Append {
  stream: string;
  events: ControlPlaneNewEvent[];
}

export interface WorkloadOptions {
  /** Stop after about this many events. */
  events: number;
  seed?: number;
  /** Most events per append (a burst of updates to one stream); 1 = one event per append. */
  maxBurst?: number;
}

/** mulberry32: small, fast, deterministic. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface TenantModel {
  id: string;
  deleted: boolean;
  users: Map<string, { clerkUserId: string; role: UserRole }>;
  origins: string[];
  routes: string[];
  keys: string[];
}

const ROLES: UserRole[] = ['owner', 'admin', 'member', 'viewer'];

export function* generateWorkload({ events, seed = 1, maxBurst = 1 }: WorkloadOptions): Generator<Append> {
  const next = random(seed);
  const pick = <T>(items: readonly T[]): T | undefined => items[Math.floor(next() * items.length)];
  const tenants: TenantModel[] = [];
  let produced = 0;
  let clock = Date.parse('2026-01-01T00:00:00.000Z');
  const meta = (tenantId: string | null): EventMetadata => {
    clock += 1000;
    return {
      actor: pick(['user_admin', 'user_alice', 'user_bob']) ?? 'user_admin',
      tenant_id: tenantId,
      correlation_id: randomUUID(),
      causation_id: null,
      occurred_at: new Date(clock).toISOString(),
      schema_version: 1,
    };
  };
  const burst = () => 1 + Math.floor(next() * maxBurst);

  const tenantState = (id: string, n: number) => ({
    tenant_id: id,
    name: `tenant ${n}`,
    subdomain: `t${n}-${id.slice(0, 8)}`,
    clerk_org_id: `org_${id.slice(0, 12)}`,
    settings: tenantSettings.parse({ rate_limit: { requests_per_second: 10 + n } }),
  });
  const originState = (tenantId: string, id: string, n: number) => {
    const { id: _id, ...config } = originConfig.parse({
      id,
      name: `origin ${n}`,
      targets: [{ url: `http://127.0.0.1:${9000 + (n % 100)}` }, { url: 'http://127.0.0.1:9999', weight: 2 }],
    });
    return { ...config, origin_id: id, tenant_id: tenantId };
  };
  const routeState = (tenantId: string, originId: string, id: string, n: number) => {
    const { id: _id, ...config } = routeConfig.parse({
      id,
      origin_id: originId,
      path_pattern: `/api/r${n}/*`,
      methods: ['GET'],
      priority: n % 10,
      auth_mode: 'apikey_required',
      rate_limit: { requests_per_second: 10 + (n % 50) },
      cache_policy: n % 2 === 0 ? { ttl_seconds: 30 } : null,
    });
    return { ...config, route_id: id, tenant_id: tenantId };
  };
  const keyState = (tenantId: string, id: string) => ({
    api_key_id: id,
    tenant_id: tenantId,
    name: `key ${id.slice(0, 4)}`,
    key_hash: randomUUID().replaceAll('-', '').repeat(2),
    key_prefix: `ve_live_${id.slice(0, 4)}`,
    scopes: ['read'],
    expires_at: next() < 0.5 ? null : '2027-01-01T00:00:00.000Z',
  });

  while (produced < events) {
    const live = tenants.filter((t) => !t.deleted);
    const tenant = pick(live);
    const roll = next();
    let append: Append | null = null;
    if (!tenant || roll < 0.04) {
      const id = randomUUID();
      tenants.push({ id, deleted: false, users: new Map(), origins: [], routes: [], keys: [] });
      append = {
        stream: streamName.tenant(id),
        events: [{ type: 'TenantCreated', data: tenantState(id, tenants.length), metadata: meta(id) }],
      };
    } else if (roll < 0.1) {
      const id = randomUUID();
      const clerkUserId = `user_${id.slice(0, 10)}`;
      const role = pick(ROLES) ?? 'member';
      tenant.users.set(id, { clerkUserId, role });
      append = {
        stream: streamName.user(id),
        events: [
          {
            type: 'UserCreated',
            data: {
              user_id: id,
              tenant_id: tenant.id,
              clerk_user_id: clerkUserId,
              email: `${clerkUserId}@example.com`,
              role,
            },
            metadata: meta(tenant.id),
          },
        ],
      };
    } else if (roll < 0.16) {
      const id = randomUUID();
      tenant.origins.push(id);
      append = {
        stream: streamName.origin(id),
        events: [
          { type: 'OriginCreated', data: originState(tenant.id, id, produced), metadata: meta(tenant.id) },
        ],
      };
    } else if (roll < 0.24 && tenant.origins.length > 0) {
      const id = randomUUID();
      tenant.routes.push(id);
      const origin = pick(tenant.origins) ?? '';
      append = {
        stream: streamName.route(id),
        events: [
          {
            type: 'RouteCreated',
            data: routeState(tenant.id, origin, id, produced),
            metadata: meta(tenant.id),
          },
        ],
      };
    } else if (roll < 0.3) {
      const id = randomUUID();
      tenant.keys.push(id);
      append = {
        stream: streamName.apiKey(id),
        events: [{ type: 'ApiKeyIssued', data: keyState(tenant.id, id), metadata: meta(tenant.id) }],
      };
    } else if (roll < 0.55 && tenant.routes.length > 0) {
      const id = pick(tenant.routes) ?? '';
      const origin = pick(tenant.origins) ?? '';
      append = {
        stream: streamName.route(id),
        events: Array.from({ length: burst() }, () => ({
          type: 'RouteUpdated' as const,
          data: {
            ...routeState(tenant.id, origin, id, Math.floor(next() * 1000)),
            changed_fields: ['path_pattern', 'priority'],
          },
          metadata: meta(tenant.id),
        })),
      };
    } else if (roll < 0.65 && tenant.origins.length > 0) {
      const id = pick(tenant.origins) ?? '';
      append = {
        stream: streamName.origin(id),
        events: Array.from({ length: burst() }, () => ({
          type: 'OriginUpdated' as const,
          data: {
            ...originState(tenant.id, id, Math.floor(next() * 1000)),
            changed_fields: ['name', 'targets'],
          },
          metadata: meta(tenant.id),
        })),
      };
    } else if (roll < 0.7 && tenant.users.size > 0) {
      const [id, user] = [...tenant.users].at(Math.floor(next() * tenant.users.size)) ?? [
        '',
        { clerkUserId: '', role: 'member' as UserRole },
      ];
      user.role = pick(ROLES) ?? 'member';
      append = {
        stream: streamName.user(id),
        events: [
          {
            type: 'UserRoleChanged',
            data: {
              user_id: id,
              tenant_id: tenant.id,
              clerk_user_id: user.clerkUserId,
              email: `${user.clerkUserId}@example.com`,
              role: user.role,
              changed_fields: ['role'],
            },
            metadata: meta(tenant.id),
          },
        ],
      };
    } else if (roll < 0.75) {
      append = {
        stream: streamName.tenant(tenant.id),
        events: [
          {
            type: 'TenantUpdated',
            data: { ...tenantState(tenant.id, Math.floor(next() * 1000)), changed_fields: ['name'] },
            metadata: meta(tenant.id),
          },
        ],
      };
    } else if (roll < 0.79 && tenant.keys.length > 0) {
      const old = tenant.keys.shift() ?? '';
      const fresh = randomUUID();
      tenant.keys.push(fresh);
      // Two appends: the new key's stream, then the rotation on the old one.
      yield {
        stream: streamName.apiKey(fresh),
        events: [{ type: 'ApiKeyIssued', data: keyState(tenant.id, fresh), metadata: meta(tenant.id) }],
      };
      produced += 1;
      append = {
        stream: streamName.apiKey(old),
        events: [
          {
            type: 'ApiKeyRotated',
            data: {
              api_key_id: old,
              tenant_id: tenant.id,
              replaced_by: fresh,
              old_key_expires_at: '2026-06-01T00:00:00.000Z',
            },
            metadata: meta(tenant.id),
          },
        ],
      };
    } else if (roll < 0.82 && tenant.keys.length > 0) {
      const id = tenant.keys.pop() ?? '';
      append = {
        stream: streamName.apiKey(id),
        events: [
          {
            type: 'ApiKeyRevoked',
            data: { api_key_id: id, tenant_id: tenant.id, reason: 'leaked' },
            metadata: meta(tenant.id),
          },
        ],
      };
    } else if (roll < 0.85 && tenant.routes.length > 0) {
      const id = tenant.routes.pop() ?? '';
      append = {
        stream: streamName.route(id),
        events: [
          { type: 'RouteDeleted', data: { route_id: id, tenant_id: tenant.id }, metadata: meta(tenant.id) },
        ],
      };
    } else if (roll < 0.87 && tenant.users.size > 0) {
      const id = [...tenant.users.keys()][0] ?? '';
      tenant.users.delete(id);
      append = {
        stream: streamName.user(id),
        events: [
          { type: 'UserDeleted', data: { user_id: id, tenant_id: tenant.id }, metadata: meta(tenant.id) },
        ],
      };
    } else if (roll < 0.9) {
      append = {
        stream: streamName.tenant(tenant.id),
        events: [
          {
            type: 'CachePurgeRequested',
            data: { tenant_id: tenant.id, route_id: pick(tenant.routes) ?? null },
            metadata: meta(tenant.id),
          },
        ],
      };
    } else if (roll < 0.91 && live.length > 3) {
      tenant.deleted = true;
      append = {
        stream: streamName.tenant(tenant.id),
        events: [{ type: 'TenantDeleted', data: { tenant_id: tenant.id }, metadata: meta(tenant.id) }],
      };
    }
    if (append) {
      produced += append.events.length;
      yield append;
    }
  }
}

/** Appends a workload; returns the number of events and the last position. */
export async function appendWorkload(
  store: EventStore,
  options: WorkloadOptions,
): Promise<{ events: number; position: bigint }> {
  let events = 0;
  let position = 0n;
  for (const append of generateWorkload(options)) {
    const result = await store.appendToStream(append.stream, append.events);
    events += append.events.length;
    position = result.position;
  }
  return { events, position };
}
