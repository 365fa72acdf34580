import { randomUUID } from 'node:crypto';
import type { EventStore } from '@vantageedge/shared/event-store/port';
import { internalListenerHeader } from '@vantageedge/shared/http/internal-listener';
import {
  DEFAULT_ORIGIN_BLOCKED_CIDRS,
  OriginAddressPolicy,
} from '@vantageedge/shared/net/origin-address-policy';
import { loggedPath } from '@vantageedge/shared/observability/logged-path';
import type { Logger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { runWithRequestContext } from '@vantageedge/shared/observability/request-context';
import { DEFAULT_PLATFORM_BASE_DOMAINS } from '@vantageedge/shared/settings/common-settings';
import type { KeyRing } from '@vantageedge/shared/tls/private-key-envelope';
import express, { type RequestHandler } from 'express';
import type pg from 'pg';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import {
  type AdminRateLimitOptions,
  createAdminRateLimiter,
  DEFAULT_ADMIN_RATE_LIMITS,
} from '../admin-rate-limit/admin-rate-limits.js';
import {
  DEFAULT_DOCUMENT_BYTES_IN_FLIGHT,
  limitDocumentBytesInFlight,
} from '../admin-rate-limit/document-bytes-in-flight.js';
import {
  DEFAULT_ORG_REQUESTS_IN_FLIGHT,
  limitOrgRequestsInFlight,
} from '../admin-rate-limit/org-requests-in-flight.js';
import {
  DEFAULT_REQUESTS_IN_FLIGHT,
  reservePoolForPlatformAdmins,
} from '../admin-rate-limit/platform-reserve.js';
import {
  DEFAULT_USER_REQUESTS_IN_FLIGHT,
  limitUserRequestsInFlight,
} from '../admin-rate-limit/requests-in-flight.js';
import {
  DEFAULT_TENANT_REQUESTS_IN_FLIGHT,
  limitTenantRequestsInFlight,
} from '../admin-rate-limit/tenant-requests-in-flight.js';
import {
  type AuthFailureLimitOptions,
  createAuthFailureLimit,
  DEFAULT_AUTH_FAILURES_PER_MINUTE,
} from '../auth/auth-failure-limiter.js';
import { type Authorizer, createAuthorizer } from '../auth/authorize.js';
import type { TenantDirectory } from '../auth/caller.js';
import { type ClerkAuthOptions, callerOf, createCallerMiddleware } from '../auth/caller-middleware.js';
import type { CachePurger } from '../cache-purge/cache-purger.js';
import { requireAccess, unknownTenantOfPath } from '../commands/context.js';
import type { CustomDomainDeps } from '../commands/custom-domain-commands.js';
import { createLegacyUserStreams } from '../commands/legacy-user-streams.js';
import { createSnapshotGuard, type SnapshotBudget } from '../commands/snapshot-guard.js';
import { createEventLogTenantDirectory, loadTenant } from '../commands/tenant-directory.js';
import type { TenantLimits } from '../commands/tenant-limits.js';
import { createEventLogResourceCounts } from '../commands/tenant-resource-counts.js';
import { tenantConfigs } from '../config-history/tenant-config.js';
import { maxEventsReadOf, type TenantEventSource } from '../config-history/tenant-events.js';
import type { QuotaCounters } from '../explain/explain-quota.js';
import { createExplainRouter } from '../explain/explain-router.js';
import { readYourWrites } from '../queries/min-position.js';
import { DEFAULT_READ_STATEMENT_TIMEOUT_MS, withReadTimeout } from '../queries/read-timeout.js';
import { createRolloutRouter } from '../rollout/rollout-router.js';
import type { RolloutDeps } from '../rollout/rollout-status.js';
import { configDocumentJsonSchema } from '../schemas/config-document.js';
import { onBodiesRead } from './body-methods.js';
import { createCommandRouter } from './command-router.js';
import { type ConsoleRouterDeps, createConsoleRouter } from './console-router.js';
import { readBodyAfterContinue } from './continue-upload.js';
import { docsPage } from './docs-page.js';
import { ApiError, createErrorHandler } from './errors.js';
import { routeExactly } from './exact-routing.js';
import { IdempotencyStore } from './idempotency.js';
import { JSON_TYPES, jsonBody } from './json-body.js';
import { buildOpenApiDocument } from './openapi.js';
import { preparedDocument, preparedText } from './prepared-document.js';
import { redactedExplanations } from './redacted-explanations.js';
import { requireWellFormedHost } from './request-host.js';
import { refuseUnreadableTarget } from './request-target.js';
import { type RequestTracingOptions, traceRequests } from './request-tracing.js';
import { methodDispatch, routeTemplates } from './route-table.js';
import { requireSafeText } from './safe-text.js';
import { SealedJson } from './sealed-json.js';
import { DOCS_CONTENT_SECURITY_POLICY, securityHeaders } from './security-headers.js';
import { answeredWithin, READINESS_CHECK_TIMEOUT_MS, sharedReadiness } from './shared-readiness.js';
import { closeAfterUnreadBody } from './unread-body.js';

export interface ControlPlaneAppDeps {
  store: EventStore;
  pool: pg.Pool;
  auth: ClerkAuthOptions;
  /**
   * The azp values the gateways take on a route's Clerk tokens (their CLERK_AUTHORIZED_PARTIES, the
   * tenants' apps), which explain checks as they do; never the admin API's own. Default: any.
   */
  gatewayAuthorizedParties?: readonly string[];
  /**
   * Read-model lookups for the query side's authorization (queries/tenant-directory.ts); default: the
   * event-log directory the commands use. Commands always authorize from the event log.
   */
  tenantDirectory?: TenantDirectory;
  apiKeyPepper: string;
  /** Default grace period of a rotated API key (seconds); default 24 h. */
  rotationGraceSeconds?: number;
  /** How long a request holds its Idempotency-Key without renewing it (seconds); default 30 (tests shorten it). */
  idempotencyLockSeconds?: number;
  /** Largest accepted JSON body; larger → 413. Default 64 KiB. */
  bodyLimitBytes?: number;
  /** Largest tenant document (config plan and apply); larger → 413. Default 4 MiB. */
  documentLimitBytes?: number;
  logger?: Logger;
  metrics?: Registry;
  clock?: () => Date;
  /**
   * The read side (the GET endpoints, full /api/v1 paths), given authorizers counting the request on the
   * tenants they grant as the commands' does: one from the read models, and the commands' own (the
   * event log's), which grants X-Min-Position's waits on a tenant the read models do not show yet.
   */
  queryRouter?: (authorizer: Authorizer, eventLogAuthorizer: Authorizer) => express.Router;
  /** How long an explain sent with X-Min-Position waits for the read models; default 2 s, as the queries. */
  minPositionWaitMs?: number;
  /** Gateway rollout status: GET /api/v1/tenants/:id/rollout and `?wait_for_rollout=` on commands. */
  rollout?: RolloutDeps;
  /** Cache purge endpoints (POST /api/v1/routes/:id/cache/purge, /tenants/:id/cache/purge). */
  cachePurger?: CachePurger;
  /** Seals certificates' private keys (CERTIFICATE_ENCRYPTION_KEY); without it certificate uploads are 503. */
  certificateKeyRing?: KeyRing;
  /** Addresses origins and JWKS URLs may not name (default: the default ORIGIN_BLOCKED_CIDRS). */
  originAddressPolicy?: OriginAddressPolicy;
  /** Platform base domains and TXT lookups for custom domains (default: default domains, system DNS). */
  customDomains?: CustomDomainDeps;
  /**
   * The gateways' quota counters (their Redis under GATEWAY_REDIS_KEY_PREFIX): POST …/explain reads what
   * is left of a request's quotas there; without them it names the quotas but not their counts.
   */
  quotaCounters?: QuotaCounters;
  /** The gateways' GATEWAY_ENCODED_SLASHES, for POST …/explain (default reject, as theirs). */
  gatewayEncodedSlashes?: 'reject' | 'keep';
  /**
   * CONTROL_PLANE_CONFIG_READ_MAX_EVENTS: events of the log one explain's fold may read (default 50,000;
   * 0: no limit); past it 503 `read_limit_exceeded`.
   */
  configReadMaxEvents?: number;
  /**
   * CONTROL_PLANE_READ_STATEMENT_TIMEOUT_MS of POST …/explain: how long each of its statements (the event
   * store's reads included) may run (default 5000; 0: no limit); past it 503 `read_timeout`.
   */
  readStatementTimeoutMs?: number;
  /** Per-tenant limits (TENANT_MAX_*); default DEFAULT_TENANT_LIMITS. */
  tenantLimits?: TenantLimits;
  /** RESERVED_SUBDOMAINS: labels no tenant may take as its subdomain; default DEFAULT_RESERVED_SUBDOMAINS. */
  reservedSubdomains?: readonly string[];
  /**
   * The most a tenant's gateway snapshot may be (SNAPSHOT_MAX_MESSAGE_BYTES, TENANT_MAX_SNAPSHOT_PERCENT,
   * TENANT_MAX_SNAPSHOT_JSON_BYTES); default DEFAULT_SNAPSHOT_BUDGET (75 % of an 8 MiB topic's limit
   * after gzip, 2 MiB of JSON).
   */
  snapshotBudget?: SnapshotBudget;
  /** The web console at /console (the built static app, its sign-in settings). */
  console?: ConsoleRouterDeps;
  /**
   * The admin API's rate limits (per-tenant commands, per-caller requests) and where they count;
   * default DEFAULT_ADMIN_RATE_LIMITS in this process's memory.
   */
  adminRateLimits?: Omit<AdminRateLimitOptions, 'onStoreError' | 'onLimited'>;
  /** CONTROL_PLANE_USER_REQUESTS_IN_FLIGHT: a caller's /api/v1 requests at once (0 = no limit). */
  userRequestsInFlight?: number;
  /** CONTROL_PLANE_TENANT_REQUESTS_IN_FLIGHT: /api/v1 requests acting on one tenant at once (0 = no limit). */
  tenantRequestsInFlight?: number;
  /** CONTROL_PLANE_ORG_REQUESTS_IN_FLIGHT: /api/v1 requests of one organisation's callers at once (0 = no limit). */
  orgRequestsInFlight?: number;
  /**
   * CONTROL_PLANE_REQUESTS_IN_FLIGHT: /api/v1 requests of every caller but the platform admins together
   * at once, the rest of the pool kept for them (0 = no limit).
   */
  requestsInFlight?: number;
  /**
   * CONTROL_PLANE_DOCUMENT_BYTES_IN_FLIGHT: bytes of tenant documents (config plan and apply) all tenants'
   * requests may hold at once, one tenant half of it (0 = no limit).
   */
  documentBytesInFlight?: number;
  /**
   * Rejected credentials per client address and minute before 429 too_many_auth_failures, and the
   * proxies whose X-Forwarded-For names the client; default DEFAULT_AUTH_FAILURES_PER_MINUTE, no proxy.
   */
  authFailures?: AuthFailureLimitOptions;
  /** OTEL_ENABLED: a SERVER span per request (http/request-tracing.ts); without it none is started. */
  tracing?: RequestTracingOptions;
  /** Aborted when the process begins its stop (SIGTERM): /readyz answers 503 from then on. */
  stopping?: AbortSignal;
}

/** Under /api/v1: the commands that take a tenant document (the tenant's id); any letter case, as routed. */
const DOCUMENT_PATHS = /^\/tenants\/([^/]+)\/config\/(?:plan|apply)$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** X-Request-Id (kept when sane, else a uuid) → response header, log context and events' correlation_id. */
const requestId: RequestHandler = (req, res, next) => {
  const given = req.get('x-request-id');
  const id = given && REQUEST_ID.test(given) ? given : randomUUID();
  res.locals['requestId'] = id;
  res.setHeader('X-Request-Id', id);
  runWithRequestContext({ requestId: id }, next);
};

/** A body that is not JSON is refused before it is read. */
const requireJsonBody: RequestHandler = (req, _res, next) => {
  const empty = req.get('transfer-encoding') === undefined && (req.get('content-length') ?? '0') === '0';
  if (!empty && req.is(JSON_TYPES) === false) {
    next(
      new ApiError(415, 'unsupported_media_type', 'send the body as application/json', [
        { field: 'content-type', issue: `${req.get('content-type') ?? '(none)'} is not application/json` },
      ]),
    );
    return;
  }
  next();
};

export function createControlPlaneApp(deps: ControlPlaneAppDeps): express.Express {
  const app = express();
  routeExactly(app);
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');
  const registry = deps.metrics ?? createMetricsRegistry('control-plane', { defaultMetrics: false });
  const requests = new Counter({
    name: 'vantageedge_control_plane_http_requests_total',
    help: 'Admin API requests by method, route and status',
    labelNames: ['method', 'route', 'status'],
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'vantageedge_control_plane_http_request_duration_seconds',
    help: 'Admin API request latency',
    labelNames: ['method', 'route'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const commands = new Counter({
    name: 'vantageedge_control_plane_commands_total',
    help: 'Commands by name and outcome (ok or the error code)',
    labelNames: ['command', 'outcome'],
    registers: [registry],
  });

  // Before anything may answer: a refusal sent while the body is still arriving closes the connection.
  app.use(closeAfterUnreadBody);
  if (deps.tracing) app.use(traceRequests(app, deps.tracing));
  // First to answer: every answer (errors, 404s, 405s included) is marked internal, so no gateway
  // relays it to a tenant whose origin names this listener (/readyz needs no credentials).
  const [markName, markValue] = internalListenerHeader('control-plane');
  app.use((_req, res, next) => {
    res.setHeader(markName, markValue);
    next();
  });
  app.use(securityHeaders);
  app.use(requestId);
  const routeTemplateOf = routeTemplates(app);
  app.use((req, res, next) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const route = routeTemplateOf(req.route) ?? 'unmatched';
      requests.inc({ method: req.method, route, status: String(res.statusCode) });
      latency.observe({ method: req.method, route }, Number(process.hrtime.bigint() - started) / 1e9);
      deps.logger?.info('request', {
        method: req.method,
        path: loggedPath(req.path),
        status: res.statusCode,
        duration_ms: Number(process.hrtime.bigint() - started) / 1e6,
      });
    });
    next();
  });

  const rateLimited = new Counter({
    name: 'vantageedge_control_plane_admin_rate_limited_total',
    help: 'Admin API requests refused (429 admin_rate_limited), by the limit hit',
    labelNames: ['limit'],
    registers: [registry],
  });
  const rateLimitFallbacks = new Counter({
    name: 'vantageedge_control_plane_admin_rate_limit_store_errors_total',
    help: 'Admin rate-limit checks Redis failed, decided by the replica’s own memory instead',
    registers: [registry],
  });
  const adminRateLimiter = createAdminRateLimiter({
    ...(deps.adminRateLimits ?? { limits: DEFAULT_ADMIN_RATE_LIMITS }),
    onStoreError: () => rateLimitFallbacks.inc(),
  });
  // After authentication, before the body is read: every /api/v1 request counts against its caller.
  const userRateLimit: RequestHandler = async (_req, res, next) => {
    await adminRateLimiter.chargeUser(callerOf(res).userId);
    next();
  };

  const authFailuresRefused = new Counter({
    name: 'vantageedge_control_plane_auth_failures_refused_total',
    help: 'Admin API requests answered 429 too_many_auth_failures without verifying their credential',
    registers: [registry],
  });
  const authFailureLimit = createAuthFailureLimit(
    deps.authFailures ?? { perMinute: DEFAULT_AUTH_FAILURES_PER_MINUTE, trustedProxies: [] },
    () => authFailuresRefused.inc(),
  );

  app.use(refuseUnreadableTarget);
  app.use(requireWellFormedHost);
  // Before authentication: OPTIONS and 405 depend only on the path.
  app.use(methodDispatch(app));

  const openApi = buildOpenApiDocument();
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  const readiness = sharedReadiness(async () => {
    const checks: Record<string, string> = {};
    // Anyone may ask: a failed check says only that it failed, its error goes to the log (a driver's
    // message names hosts, ports and users).
    const check = (name: string, probe: Promise<unknown>) =>
      answeredWithin(probe, READINESS_CHECK_TIMEOUT_MS).then(
        () => {
          checks[name] = 'ok';
        },
        (error: unknown) => {
          checks[name] = 'unavailable';
          deps.logger?.warn('readiness check failed', { check: name, error: String(error) });
        },
      );
    await Promise.all([
      check('postgres', deps.pool.query('select 1')),
      check('event_store', deps.store.headPosition()),
    ]);
    return { ready: Object.values(checks).every((value) => value === 'ok'), checks };
  });
  app.get('/readyz', async (_req, res) => {
    if (deps.stopping?.aborted) {
      res.status(503).json({ status: 'not_ready', reason: 'shutting down', checks: {} });
      return;
    }
    const { ready, checks } = await readiness();
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not_ready', checks });
  });
  app.get('/openapi.json', preparedDocument(openApi, 'application/json'));
  // The tenant document's JSON Schema (vantageedge dump writes files that point editors here).
  app.get(
    '/schemas/tenant-config.json',
    preparedDocument(configDocumentJsonSchema(), 'application/schema+json'),
  );
  const docs = preparedText(docsPage(), 'text/html');
  app.get('/docs', (req, res, next) => {
    res.setHeader('Cache-Control', 'public, max-age=3600');
    res.setHeader('Content-Security-Policy', DOCS_CONTENT_SECURITY_POLICY);
    docs(req, res, next);
  });
  if (deps.console) app.use(createConsoleRouter(deps.console));

  // Writes are authorized from the event log, so a removal or demotion counts at once; reads use the
  // read models they serve.
  const eventLogDirectory = createEventLogTenantDirectory(deps.store);
  // A request granted access to a tenant holds one of the tenant's places until it is answered.
  const tenantRequestsInFlight = limitTenantRequestsInFlight(
    deps.tenantRequestsInFlight ?? DEFAULT_TENANT_REQUESTS_IN_FLIGHT,
  );
  const commandAuthorizer = tenantRequestsInFlight.counting(createAuthorizer(eventLogDirectory));
  const authorizer = tenantRequestsInFlight.counting(
    createAuthorizer(deps.tenantDirectory ?? eventLogDirectory),
  );
  // Everything under /api/v1 needs a verified caller; bodies read must be JSON and within the limit.
  const documentLimitBytes = deps.documentLimitBytes ?? 4 * 1024 * 1024;
  const documentJson = readBodyAfterContinue(jsonBody(documentLimitBytes), documentLimitBytes);
  const documentBytesHeld = new Gauge({
    name: 'vantageedge_control_plane_document_bytes_in_flight',
    help: 'Bytes of tenant documents (config plan and apply) being read or worked on',
    registers: [registry],
  });
  const documentsInFlight = limitDocumentBytesInFlight(
    deps.documentBytesInFlight ?? DEFAULT_DOCUMENT_BYTES_IN_FLIGHT,
    documentLimitBytes,
    (bytes) => documentBytesHeld.set(bytes),
  );
  const bodyLimitBytes = deps.bodyLimitBytes ?? 64 * 1024;
  // Counted once the body is read (see below), and around a document's access check.
  const eventLogAuthorizer = createAuthorizer(eventLogDirectory);
  const orgPlaces = limitOrgRequestsInFlight(
    deps.orgRequestsInFlight ?? DEFAULT_ORG_REQUESTS_IN_FLIGHT,
    async (caller) => {
      const orgTenant = caller.orgId === null ? null : await eventLogDirectory.tenantIdForOrg(caller.orgId);
      return orgTenant !== null && (await eventLogAuthorizer.access(caller, orgTenant)) === 'write';
    },
  );
  const poolPlaces = reservePoolForPlatformAdmins(deps.requestsInFlight ?? DEFAULT_REQUESTS_IN_FLIGHT);
  // A tenant document holds a whole config: it may be larger than any other body. Only a caller with
  // access to the tenant gets it read (anyone else's request would otherwise be held open while up to
  // the limit arrives, and parsed); an id that is no tenant's is refused by its route, body unread.
  const documentBody: RequestHandler = async (req, res, next) => {
    const pathId = DOCUMENT_PATHS.exec(req.path)?.[1];
    if (pathId === undefined || !UUID.test(pathId)) {
      next();
      return;
    }
    // The tenant in its one spelling, as its command reads it: one access check, one share of the budget.
    const tenantId = pathId.toLowerCase();
    const caller = callerOf(res);
    // The check reads the event log before the body arrives: it holds the places many callers share
    // while it runs (any signed-in user may name any tenant), not while the body is sent.
    let access: 'read' | 'write';
    const leaveOrg = await orgPlaces.enter(caller);
    try {
      const leavePool = poolPlaces.enter(caller);
      try {
        access = await requireAccess(
          { authorizer: commandAuthorizer, store: deps.store },
          caller,
          tenantId,
          'read',
          unknownTenantOfPath,
        );
      } finally {
        leavePool();
      }
    } finally {
      leaveOrg();
    }
    documentsInFlight.hold(tenantId, access, req, res);
    documentJson(req, res, next);
  };
  app.use(
    '/api/v1',
    authFailureLimit.beforeAuthentication,
    createCallerMiddleware(deps.auth),
    authFailureLimit.authenticated,
    userRateLimit,
    limitUserRequestsInFlight(deps.userRequestsInFlight ?? DEFAULT_USER_REQUESTS_IN_FLIGHT),
    onBodiesRead(requireJsonBody),
    onBodiesRead(documentBody),
    onBodiesRead(readBodyAfterContinue(jsonBody(bodyLimitBytes), bodyLimitBytes)),
    requireSafeText,
    // Once the body is read, as the tenant's limit: the places many callers share are the pool's, and a
    // request whose body has not arrived holds no connection; counted from its headers, a few signed-in
    // users announcing bodies they never send would hold every place for the request timeout.
    orgPlaces.middleware,
    poolPlaces.middleware,
    tenantRequestsInFlight.middleware,
  );
  const readTimeoutMs = deps.readStatementTimeoutMs ?? DEFAULT_READ_STATEMENT_TIMEOUT_MS;
  // The tenant folds commands read (limit counts, the snapshot budget, an apply's current config) are
  // bounded as the config reads are: a cold fold of a long history would otherwise hold a pooled
  // connection as long as PostgreSQL took, and the thread for every event. They are not charged to the
  // tenant's config read budget: commands have their own (newCommandBudget).
  const commandFolds: TenantEventSource = {
    store: deps.store,
    pool: withReadTimeout(deps.pool, readTimeoutMs),
    readTimeoutMs: readTimeoutMs === 0 ? undefined : readTimeoutMs,
    maxEventsRead: maxEventsReadOf(deps.configReadMaxEvents),
  };
  const configs = tenantConfigs(
    commandFolds,
    // A rollback's target config is read from the history as GET …/config?at_position= reads it.
    { ...commandFolds, chargedToReadBudget: true },
    deps.pool,
  );
  app.use(
    '/api/v1',
    createCommandRouter({
      store: deps.store,
      authorizer: commandAuthorizer,
      legacyUsers: createLegacyUserStreams(deps.store),
      clock: deps.clock ?? (() => new Date()),
      apiKeyPepper: deps.apiKeyPepper,
      rotationGraceSeconds: deps.rotationGraceSeconds ?? 86_400,
      idempotency: new IdempotencyStore(
        deps.pool,
        new SealedJson(deps.apiKeyPepper),
        deps.store,
        deps.idempotencyLockSeconds,
      ),
      onCommand: (command, outcome) => commands.inc({ command, outcome }),
      rollout: deps.rollout,
      cachePurger: deps.cachePurger,
      certificateKeyRing: deps.certificateKeyRing,
      originAddressPolicy: deps.originAddressPolicy ?? new OriginAddressPolicy(DEFAULT_ORIGIN_BLOCKED_CIDRS),
      clerkIssuer: deps.auth.issuer,
      customDomains: deps.customDomains,
      tenantLimits: deps.tenantLimits,
      reservedSubdomains: deps.reservedSubdomains,
      snapshotGuard: createSnapshotGuard({
        source: commandFolds,
        // An apply's or rollback's steps fold on from its own bounded fold, a step's events at a time:
        // cut off between two steps, the change would be left half made.
        planStepsSource: { store: deps.store, pool: deps.pool },
        ...(deps.snapshotBudget ? { budget: deps.snapshotBudget } : {}),
      }),
      tenantConfigs: configs,
      // Counted creates take the lock applies and rollbacks hold, and count from the event log.
      tenantLock: configs,
      resourceCounts: createEventLogResourceCounts(commandFolds, deps.clock),
      newCommandBudget: () => adminRateLimiter.commandBudget(),
    }),
  );
  if (deps.rollout) {
    app.use(
      createRolloutRouter({
        ...deps.rollout,
        authorizer,
        tenantKnown: async (tenantId) => (await loadTenant(deps.store, tenantId)).status !== 'absent',
        headPosition: () => deps.store.headPosition(),
        onUnreadable: (reason) => deps.logger?.warn('rollout status unreadable', { error: String(reason) }),
      }),
    );
  }
  app.use('/api/v1/tenants/:id/explain', redactedExplanations());
  app.use(
    createExplainRouter({
      store: deps.store,
      // A read: its statements run as the query side's, read-only and cut off after the timeout.
      pool: withReadTimeout(deps.pool, readTimeoutMs),
      readTimeoutMs: readTimeoutMs === 0 ? undefined : readTimeoutMs,
      authorizer,
      minPosition: readYourWrites(
        {
          pool: deps.pool,
          store: deps.store,
          directory: deps.tenantDirectory ?? eventLogDirectory,
          authorizers: [commandAuthorizer, authorizer],
        },
        { maxWaitMs: deps.minPositionWaitMs ?? 2_000, pollIntervalMs: 20 },
      ),
      apiKeyPepper: deps.apiKeyPepper,
      baseDomains: deps.customDomains?.baseDomains ?? DEFAULT_PLATFORM_BASE_DOMAINS,
      ...(deps.gatewayEncodedSlashes ? { encodedSlashes: deps.gatewayEncodedSlashes } : {}),
      quotaCounters: deps.quotaCounters,
      maxEventsRead: maxEventsReadOf(deps.configReadMaxEvents),
      ...(deps.auth.jwtKey
        ? {
            clerk: {
              jwtKey: deps.auth.jwtKey,
              authorizedParties: deps.gatewayAuthorizedParties ?? [],
              issuer: deps.auth.issuer,
              allowDevTokens: deps.auth.allowDevTokens ?? false,
            },
          }
        : {}),
      ...(deps.clock ? { clock: deps.clock } : {}),
    }),
  );
  // The query router declares its full /api/v1/... paths.
  if (deps.queryRouter) app.use(deps.queryRouter(authorizer, commandAuthorizer));
  app.use((_req, _res, next) => next(new ApiError(404, 'not_found', 'no such endpoint')));
  app.use(
    createErrorHandler(
      (error) =>
        deps.logger?.error('unexpected error', {
          error: String(error),
          stack: error instanceof Error ? error.stack : undefined,
        }),
      (code, cause) => deps.logger?.warn('dependency unavailable', { code, error: String(cause) }),
      // Every limit's refusals, the in-flight caps' and the read budgets' too, as they are answered.
      (limit) => rateLimited.inc({ limit }),
    ),
  );
  return app;
}
