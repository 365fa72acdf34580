import { createHash, randomUUID } from 'node:crypto';
import { fold, handleCommand } from '@vantageedge/control-plane/commands/handle-command';
import { apiKeyDecider } from '@vantageedge/control-plane/domain/api-key';
import { type Decider, DomainError } from '@vantageedge/control-plane/domain/decision';
import { originDecider } from '@vantageedge/control-plane/domain/origin';
import { routeDecider } from '@vantageedge/control-plane/domain/route';
import { tenantDecider } from '@vantageedge/control-plane/domain/tenant';
import { userDecider } from '@vantageedge/control-plane/domain/user';
import { apiKeyDisplayPrefix, hashApiKey } from '@vantageedge/shared/domain/api-key-hash';
import { streamName } from '@vantageedge/shared/domain/events';
import {
  originConfig,
  type RateLimitPolicy,
  routeConfig,
  tenantSettings,
} from '@vantageedge/shared/domain/gateway-config';
import {
  type EventMetadata,
  type EventStore,
  UniquenessViolationError,
} from '@vantageedge/shared/event-store/port';
import { DEV_ADMIN_USER_ID } from './dev-settings.js';

/**
 * The product's preconfigured demo data, written through the control plane's command layer (the same
 * deciders and handleCommand the admin API uses: validation, optimistic concurrency, uniqueness
 * reservations, audit metadata) acting as the platform admin `system:seed`.
 *
 * Idempotent: every demo resource has a fixed id, so a second run finds each stream and skips it
 * (the only change it makes is pointing the demo origin at the current DEMO_ORIGIN_URL).
 *
 * The demo API key has the fixed plaintext `demo_key_abc123` (the README's demo uses it). The admin API
 * never accepts a plaintext key — it only issues random ones — so the seeder imports this one as a
 * privileged writer: it decides IssueApiKey with the peppered hash of the fixed plaintext, which
 * appends `ApiKeyIssued` with its `api_key_hash:<hash>` reservation like any issued key.
 */

export const SEED_ACTOR = 'system:seed';
export const DEMO_API_KEY = 'demo_key_abc123';
export const DEMO_SUBDOMAIN = 'demo';

/** Fixed ids of the demo resources (version-4 shaped UUIDs). */
export const DEMO_IDS = {
  tenant: 'de000000-0000-4000-8000-000000000001',
  origin: 'de000000-0000-4000-8000-000000000002',
  routes: {
    public: 'de000000-0000-4000-8000-000000000010',
    users: 'de000000-0000-4000-8000-000000000011',
    admin: 'de000000-0000-4000-8000-000000000012',
    posts: 'de000000-0000-4000-8000-000000000013',
  },
  apiKey: 'de000000-0000-4000-8000-000000000020',
} as const;

/**
 * /api/users/*: a token bucket of 100 requests (burst) refilled at 1 per second, per user. The demo's
 * loop of 150 back-to-back curl calls takes a few seconds on loopback (it would need over 50 s to
 * stay under the limit), so it spends the burst and gets 429s; a client at 1 request/s is never
 * limited, and the bucket is full again 100 s after the loop. (A policy of 100 rps with
 * a burst of 200 would never trigger on a sequential curl loop.)
 */
export const DEMO_USERS_RATE_LIMIT: RateLimitPolicy = {
  algorithm: 'token_bucket',
  requests_per_second: 1,
  burst: 100,
  scope: 'user',
  accuracy: 'exact',
  on_store_failure: 'open',
};

export interface SeedResult {
  tenantId: string;
  /** What was created or changed this run; empty when everything already existed. */
  created: string[];
  skipped: string[];
}

export interface SeedOptions {
  store: EventStore;
  apiKeyPepper: string;
  /** Base URL of the demo origin (the local one of make dev, or DEMO_ORIGIN_URL). */
  originUrl: string;
  /**
   * Clerk users made owners of the demo tenant (default: make dev's admin, the user of
   * `make dev-token`). The demo tenant has no Clerk org, so its JWT route accepts exactly its users.
   */
  demoUserIds?: readonly string[];
  clock?: () => Date;
}

/** A stable user id per Clerk user, so re-running the seed finds the user it added before. */
function demoUserId(clerkUserId: string): string {
  const hex = createHash('sha256').update(`vantageedge-demo-user:${clerkUserId}`).digest('hex');
  const variant = ((Number.parseInt(hex[16] ?? '0', 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

export async function seedDemo(options: SeedOptions): Promise<SeedResult> {
  const { store } = options;
  const clock = options.clock ?? (() => new Date());
  const correlation = `seed-${randomUUID()}`;
  const metadata = (): EventMetadata => ({
    actor: SEED_ACTOR,
    tenant_id: DEMO_IDS.tenant,
    correlation_id: correlation,
    causation_id: null,
    occurred_at: clock().toISOString(),
    schema_version: 1,
  });
  const result: SeedResult = { tenantId: DEMO_IDS.tenant, created: [], skipped: [] };

  /** Creates the resource unless its stream already has events. */
  async function ensure<State extends { status: string }, Command>(
    what: string,
    stream: string,
    decider: Decider<State, Command>,
    command: () => Command,
  ): Promise<State> {
    const existing = fold(decider, await store.readStream(stream));
    if (existing.status !== 'absent') {
      result.skipped.push(what);
      return existing;
    }
    // The demo's few resources are far under any snapshot budget: no guard to compose here.
    const handled = await handleCommand({
      store,
      stream,
      decider,
      metadata,
      command,
      snapshotGuard: undefined,
      commandBudget: undefined,
    });
    result.created.push(what);
    return handled.state;
  }

  const tenant = await ensure(
    'tenant demo-company',
    streamName.tenant(DEMO_IDS.tenant),
    tenantDecider,
    () => ({
      type: 'CreateTenant' as const,
      tenant: {
        tenant_id: DEMO_IDS.tenant,
        name: 'demo-company',
        subdomain: DEMO_SUBDOMAIN,
        clerk_org_id: null,
        settings: tenantSettings.parse({}),
      },
    }),
  );
  if (tenant.status !== 'active') {
    throw new Error(
      `the demo tenant ${DEMO_IDS.tenant} is ${tenant.status}; run make dev-reset to start over`,
    );
  }

  const { id: _originId, ...origin } = originConfig.parse({
    id: DEMO_IDS.origin,
    name: 'demo-origin',
    targets: [{ url: options.originUrl, weight: 1 }],
    health_check_path: '/health',
    timeout_seconds: 30,
  });
  const originStream = streamName.origin(DEMO_IDS.origin);
  const existingOrigin = await ensure('origin demo-origin', originStream, originDecider, () => ({
    type: 'Create' as const,
    data: { ...origin, origin_id: DEMO_IDS.origin, tenant_id: DEMO_IDS.tenant },
  }));
  if (existingOrigin.status === 'active' && existingOrigin.data.targets[0]?.url !== options.originUrl) {
    await handleCommand({
      store,
      snapshotGuard: undefined,
      commandBudget: undefined,
      stream: originStream,
      decider: originDecider,
      metadata,
      command: () => ({
        type: 'Update' as const,
        changes: { targets: [{ url: options.originUrl, weight: 1 }] },
      }),
    });
    result.created.push(`origin demo-origin now at ${options.originUrl}`);
  }

  const routes: Array<[keyof typeof DEMO_IDS.routes, Record<string, unknown>]> = [
    ['public', { path_pattern: '/api/public/*', auth_mode: 'public' }],
    ['users', { path_pattern: '/api/users/*', auth_mode: 'jwt_required', rate_limit: DEMO_USERS_RATE_LIMIT }],
    ['admin', { path_pattern: '/api/admin/*', auth_mode: 'apikey_required' }],
    [
      'posts',
      {
        path_pattern: '/api/posts/*',
        auth_mode: 'public',
        cache_policy: { enabled: true, ttl_seconds: 300, cache_key_pattern: 'path+query' },
      },
    ],
  ];
  for (const [name, spec] of routes) {
    const routeId = DEMO_IDS.routes[name];
    const { id: _routeId, ...route } = routeConfig.parse({
      id: routeId,
      origin_id: DEMO_IDS.origin,
      strip_prefix: '/api',
      ...spec,
    });
    await ensure(`route ${String(spec['path_pattern'])}`, streamName.route(routeId), routeDecider, () => ({
      type: 'Create' as const,
      data: { ...route, route_id: routeId, tenant_id: DEMO_IDS.tenant },
    }));
  }

  for (const clerkUserId of options.demoUserIds ?? [DEV_ADMIN_USER_ID]) {
    const userId = demoUserId(clerkUserId);
    try {
      await ensure(`user ${clerkUserId} (owner)`, streamName.user(userId), userDecider, () => ({
        type: 'CreateUser' as const,
        user: {
          user_id: userId,
          tenant_id: DEMO_IDS.tenant,
          clerk_user_id: clerkUserId,
          email: `${clerkUserId}@demo.localhost`,
          role: 'owner' as const,
        },
      }));
    } catch (error) {
      // Already a user of the demo tenant (added through the admin API): nothing to do.
      if (!(error instanceof UniquenessViolationError)) throw error;
      result.skipped.push(`user ${clerkUserId} (already a user of the demo tenant)`);
    }
  }

  try {
    await ensure('api key demo_key_abc123', streamName.apiKey(DEMO_IDS.apiKey), apiKeyDecider, () => ({
      type: 'IssueApiKey' as const,
      key: {
        api_key_id: DEMO_IDS.apiKey,
        tenant_id: DEMO_IDS.tenant,
        name: 'demo-key',
        key_hash: hashApiKey(options.apiKeyPepper, DEMO_API_KEY),
        key_prefix: apiKeyDisplayPrefix(DEMO_API_KEY),
        scopes: ['read', 'write'],
        expires_at: null,
      },
    }));
  } catch (error) {
    // The same plaintext already issued under another id (with this pepper): it works, nothing to do.
    if (!(error instanceof DomainError && error.cause instanceof UniquenessViolationError)) throw error;
    result.skipped.push('api key demo_key_abc123 (issued earlier under another id)');
  }
  return result;
}
