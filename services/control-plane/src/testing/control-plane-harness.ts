import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readReadModelsPosition } from '@vantageedge/projections/read-models/position';
import { startReadModelProjector } from '@vantageedge/projections/read-models/projector';
import type { Projector } from '@vantageedge/projections/runner/projector';
import { createEventStore } from '@vantageedge/shared/event-store/factory';
import type { EventStore, RecordedEvent } from '@vantageedge/shared/event-store/port';
import {
  ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK,
  OriginAddressPolicy,
} from '@vantageedge/shared/net/origin-address-policy';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { withConnectionRetry } from '@vantageedge/shared/postgres/lost-connections';
import type { RedisClient } from '@vantageedge/shared/redis/client';
import {
  type ClerkTestKeys,
  type ClerkTokenClaims,
  createClerkTestKeys,
  OFFLINE_CLERK_ISSUER,
  OFFLINE_CLERK_PUBLISHABLE_KEY,
  signClerkToken,
} from '@vantageedge/shared/testing/clerk-tokens';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import type { KeyRing } from '@vantageedge/shared/tls/private-key-envelope';
import type pg from 'pg';
import type { Registry } from 'prom-client';
import { createAdminPool } from '../admin-pool.js';
import type { AdminRateLimitOptions } from '../admin-rate-limit/admin-rate-limits.js';
import type { AuthFailureLimitOptions } from '../auth/auth-failure-limiter.js';
import type { Authorizer } from '../auth/authorize.js';
import type { CachePurger } from '../cache-purge/cache-purger.js';
import type { CustomDomainDeps } from '../commands/custom-domain-commands.js';
import type { SnapshotBudget } from '../commands/snapshot-guard.js';
import type { TenantLimits } from '../commands/tenant-limits.js';
import type { QuotaCounters } from '../explain/explain-quota.js';
import { createControlPlaneApp } from '../http/app.js';
import { withOriginFormTargets } from '../http/request-target.js';
import { type RegisteredRoute, registeredRoutes } from '../http/route-table.js';
import type { ApiKeyQuotaReader } from '../queries/api-key-quota.js';
import { createQueryRouter } from '../queries/router.js';
import { createTenantDirectory } from '../queries/tenant-directory.js';

export const PLATFORM_ADMIN = 'user_platformadmin';
export const TEST_PEPPER = 'test-pepper-0123456789abcdef0123456789abcdef';

export interface ApiResponse {
  status: number;
  headers: Headers;
  body: unknown;
}

export interface RequestOptions {
  token?: string | null;
  body?: unknown;
  rawBody?: string;
  headers?: Record<string, string>;
}

/** A control plane on port 0 over a fresh PostgreSQL database and the PostgreSQL event store. */
export interface ControlPlaneHarness {
  baseUrl: string;
  db: TestDatabase;
  store: EventStore;
  keys: ClerkTestKeys;
  adminToken: string;
  token(claims: ClerkTokenClaims): Promise<string>;
  request(method: string, path: string, options?: RequestOptions): Promise<ApiResponse>;
  allEvents(): Promise<RecordedEvent[]>;
  /** The read-model projector (withReadSide only): tests stop it to let the read models fall behind. */
  projector: Projector | null;
  /**
   * Resolves once the read models include every event appended so far (withReadSide only): for reads
   * that take no X-Min-Position (explain, a test's own SQL) after a command.
   */
  readModelsCaughtUp(): Promise<void>;
  /** The pool the app's requests use (its own with `poolSize` or `connectThrough`, else `db.pool`). */
  pool: pg.Pool;
  /** The app's metrics (main.ts serves them on their own listener, CONTROL_PLANE_METRICS_PORT). */
  metrics: Registry;
  /** Every route the app registers, as its router stack holds them (http/route-table.ts). */
  routes: RegisteredRoute[];
  close(): Promise<void>;
}

export async function startControlPlane(
  options: {
    bodyLimitBytes?: number;
    authorizedParties?: string[];
    /** Mount the query router and run the read-model projector (the whole admin API). */
    withReadSide?: boolean;
    cachePurger?: CachePurger;
    /** ORIGIN_BLOCKED_CIDRS; default: the default without loopback (test origins are on 127.0.0.1). */
    originBlockedCidrs?: readonly string[];
    /** Base domains and TXT lookups of the custom-domain commands (e.g. a test DNS server's). */
    customDomains?: CustomDomainDeps;
    tenantLimits?: TenantLimits;
    /** RESERVED_SUBDOMAINS; default: the app's (DEFAULT_RESERVED_SUBDOMAINS). */
    reservedSubdomains?: readonly string[];
    /** The snapshot budget (SNAPSHOT_MAX_MESSAGE_BYTES, TENANT_MAX_SNAPSHOT_PERCENT); default: the app's. */
    snapshotBudget?: SnapshotBudget;
    /** The live quota counters GET /api/v1/api-keys/:id reads. */
    apiKeyQuota?: ApiKeyQuotaReader;
    /** The gateways' quota counters POST …/explain reads; default: none (counts not read). */
    quotaCounters?: QuotaCounters;
    /**
     * How long a query with X-Min-Position waits for the read models (else 503 not_caught_up). Default
     * 10 s, not the app's 2 s: on a loaded machine running test files in parallel the projector, which
     * shares the test's event loop, can be seconds behind.
     */
    minPositionWaitMs?: number;
    /** USAGE_QUERY_TIMEOUT_MS of GET /api/v1/usage; default: the app's. */
    usageQueryTimeoutMs?: number;
    certificateKeyRing?: KeyRing;
    /** Rollout status and `?wait_for_rollout=`: the heartbeats' Redis (the harness's database). */
    rolloutRedis?: RedisClient;
    /** The admin API's rate limits; default: the app's default, in memory. */
    adminRateLimits?: Omit<AdminRateLimitOptions, 'onStoreError' | 'onLimited'>;
    /** Rejected credentials per client address, trusted proxies; default: the app's (60 a minute, none). */
    authFailures?: AuthFailureLimitOptions;
    /** A private PostgreSQL server (a test that stops and starts it); default: the local one. */
    serverUrl?: string;
    /** Wraps the event store the app uses (fault injection); `store` stays the real one. */
    wrapStore?: (store: EventStore) => EventStore;
    /**
     * The app's pool and event store connect through this (e.g. a test's TCP proxy, given the database
     * URL, answering the URL to use); `db.pool`, `store` and the projector connect directly.
     */
    connectThrough?: (databaseUrl: string) => string;
    /** The app's own pool of this many connections (`pool`), as main.ts's; default: `db.pool`. */
    poolSize?: number;
    /** CONTROL_PLANE_POOL_WAIT_MS of the app's own pool (`poolSize`, `connectThrough`); default: the app's. */
    poolWaitMs?: number;
    /** POSTGRES_STATEMENT_DEADLINE_MS of the app's own pool (`poolSize`, `connectThrough`); default: the app's. */
    statementDeadlineMs?: number;
    /** CONTROL_PLANE_USER_REQUESTS_IN_FLIGHT; default 0 (off). */
    userRequestsInFlight?: number;
    /** CONTROL_PLANE_TENANT_REQUESTS_IN_FLIGHT; default 0 (off). */
    tenantRequestsInFlight?: number;
    /** CONTROL_PLANE_ORG_REQUESTS_IN_FLIGHT; default 0 (off). */
    orgRequestsInFlight?: number;
    /** CONTROL_PLANE_REQUESTS_IN_FLIGHT; default 0 (off). */
    requestsInFlight?: number;
    /** CONTROL_PLANE_DOCUMENT_BYTES_IN_FLIGHT; default 0 (off). */
    documentBytesInFlight?: number;
    /** CONTROL_PLANE_CONFIG_READ_MAX_EVENTS of config reads and explain; default: the app's. */
    configReadMaxEvents?: number;
    /** CONTROL_PLANE_READ_STATEMENT_TIMEOUT_MS of the read side and explain; default: the app's. */
    readStatementTimeoutMs?: number;
    /** Where the app's log lines go, from level info; default: stdout, errors only. */
    logStream?: NodeJS.WritableStream;
    /** The commands' clock (events' occurred_at, expiries); default: the system's. */
    clock?: () => Date;
    /** How long a request holds its Idempotency-Key without renewing it (seconds); default: the app's 30. */
    idempotencyLockSeconds?: number;
  } = {},
): Promise<ControlPlaneHarness> {
  const database = await createTestDatabase(options.serverUrl ? { serverUrl: options.serverUrl } : {});
  // As main.ts composes it: a statement meeting a connection the server ended is sent again.
  const db: TestDatabase = { ...database, pool: withConnectionRetry(database.pool) };
  const store = createEventStore({ kind: 'postgres', pool: db.pool });
  const keys = await createClerkTestKeys();
  const originAddressPolicy = new OriginAddressPolicy(
    options.originBlockedCidrs ?? ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK,
  );
  const projector = options.withReadSide ? startReadModelProjector({ store, pool: db.pool }) : null;
  // The app's own pool and store when it connects through something else (as main.ts composes them).
  const through =
    options.connectThrough || options.poolSize
      ? createAdminPool({
          connectionString: options.connectThrough?.(db.url) ?? db.url,
          max: options.poolSize ?? 10,
          waitMs: options.poolWaitMs,
          liveness:
            options.statementDeadlineMs === undefined
              ? {}
              : { statementDeadlineMs: options.statementDeadlineMs },
        })
      : null;
  through?.on('error', () => {});
  const appPool = through ?? db.pool;
  const appStore = through ? createEventStore({ kind: 'postgres', pool: appPool }) : store;
  const metrics = createMetricsRegistry('control-plane', { defaultMetrics: false });
  const app = createControlPlaneApp({
    metrics,
    store: options.wrapStore ? options.wrapStore(appStore) : appStore,
    pool: appPool,
    auth: {
      jwtKey: keys.publicKeyPem,
      publishableKey: OFFLINE_CLERK_PUBLISHABLE_KEY,
      issuer: OFFLINE_CLERK_ISSUER,
      authorizedParties: options.authorizedParties ?? [],
      platformAdminUserIds: new Set([PLATFORM_ADMIN]),
    },
    ...(options.withReadSide
      ? {
          tenantDirectory: createTenantDirectory(appPool),
          queryRouter: (authorizer: Authorizer, eventLogAuthorizer: Authorizer) =>
            createQueryRouter({
              pool: appPool,
              authorizer,
              eventLogAuthorizer,
              // main.ts's: the app's pool, which its requests share.
              eventStore: appStore,
              apiKeyQuota: options.apiKeyQuota,
              usageQueryTimeoutMs: options.usageQueryTimeoutMs,
              minPositionWaitMs: options.minPositionWaitMs ?? 10_000,
              configReadMaxEvents: options.configReadMaxEvents,
              readStatementTimeoutMs: options.readStatementTimeoutMs,
            }),
        }
      : {}),
    minPositionWaitMs: options.minPositionWaitMs ?? 10_000,
    apiKeyPepper: TEST_PEPPER,
    originAddressPolicy,
    ...(options.cachePurger ? { cachePurger: options.cachePurger } : {}),
    ...(options.quotaCounters ? { quotaCounters: options.quotaCounters } : {}),
    ...(options.customDomains ? { customDomains: options.customDomains } : {}),
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.idempotencyLockSeconds === undefined
      ? {}
      : { idempotencyLockSeconds: options.idempotencyLockSeconds }),
    ...(options.tenantLimits ? { tenantLimits: options.tenantLimits } : {}),
    ...(options.reservedSubdomains ? { reservedSubdomains: options.reservedSubdomains } : {}),
    ...(options.snapshotBudget ? { snapshotBudget: options.snapshotBudget } : {}),
    ...(options.certificateKeyRing ? { certificateKeyRing: options.certificateKeyRing } : {}),
    ...(options.rolloutRedis ? { rollout: { pool: db.pool, redis: options.rolloutRedis } } : {}),
    ...(options.adminRateLimits ? { adminRateLimits: options.adminRateLimits } : {}),
    ...(options.authFailures ? { authFailures: options.authFailures } : {}),
    // Off unless asked: race tests send many commands of one caller at once.
    userRequestsInFlight: options.userRequestsInFlight ?? 0,
    tenantRequestsInFlight: options.tenantRequestsInFlight ?? 0,
    orgRequestsInFlight: options.orgRequestsInFlight ?? 0,
    requestsInFlight: options.requestsInFlight ?? 0,
    documentBytesInFlight: options.documentBytesInFlight ?? 0,
    ...(options.configReadMaxEvents !== undefined
      ? { configReadMaxEvents: options.configReadMaxEvents }
      : {}),
    ...(options.readStatementTimeoutMs !== undefined
      ? { readStatementTimeoutMs: options.readStatementTimeoutMs }
      : {}),
    logger: options.logStream
      ? createLogger({ service: 'control-plane-test', level: 'info', stream: options.logStream })
      : createLogger({ service: 'control-plane-test', level: 'error' }),
    ...(options.bodyLimitBytes ? { bodyLimitBytes: options.bodyLimitBytes } : {}),
  });
  // As main.ts's listener hands requests to the app (http/listener.ts).
  const server: Server = createServer(withOriginFormTargets(app));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  originAddressPolicy.addOwnListener({ host: '127.0.0.1', port });
  const baseUrl = `http://127.0.0.1:${port}`;
  const token = (claims: ClerkTokenClaims) => signClerkToken(keys, claims);
  const adminToken = await token({ userId: PLATFORM_ADMIN });

  async function request(method: string, path: string, opts: RequestOptions = {}): Promise<ApiResponse> {
    const headers: Record<string, string> = { ...opts.headers };
    const bearer = opts.token === undefined ? adminToken : opts.token;
    if (bearer !== null) headers['authorization'] = `Bearer ${bearer}`;
    let body: string | undefined;
    if (opts.rawBody !== undefined) body = opts.rawBody;
    else if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers['content-type'] ??= 'application/json';
    }
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers,
      ...(body !== undefined ? { body } : {}),
    });
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = text === '' ? null : JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
    return { status: response.status, headers: response.headers, body: parsed };
  }

  async function readModelsCaughtUp(): Promise<void> {
    if (!projector) throw new Error('readModelsCaughtUp needs withReadSide');
    const head = await store.headPosition();
    for (const deadline = Date.now() + 60_000; (await readReadModelsPosition(db.pool)) < head; ) {
      if (Date.now() > deadline) throw new Error(`the read models did not reach position ${head}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  return {
    baseUrl,
    db,
    store,
    keys,
    adminToken,
    token,
    request,
    allEvents: () => store.readAll(),
    projector,
    readModelsCaughtUp,
    pool: appPool,
    metrics,
    routes: registeredRoutes(app),
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await projector?.stop();
      if (appStore !== store) await appStore.close();
      await through?.end();
      await store.close();
      await db.drop();
    },
  };
}

/** Narrow helper for test assertions on JSON bodies. */
export function json(response: ApiResponse): Record<string, unknown> {
  return response.body as Record<string, unknown>;
}
