import { randomBytes, randomUUID } from 'node:crypto';
import { TENANT_CACHE_MAX_BYTES_LIMIT } from '@vantageedge/shared/domain/gateway-config';
import { createRedisClient, type RedisClient } from '@vantageedge/shared/redis/client';
import {
  createClerkTestKeys,
  signClerkTemplateToken,
  signClerkToken,
} from '@vantageedge/shared/testing/clerk-tokens';
import { TEST_INFRA } from '@vantageedge/shared/testing/infrastructure';
import { createTestCa, issueTestCertificate } from '@vantageedge/shared/testing/test-certificates';
import { keyRing } from '@vantageedge/shared/tls/private-key-envelope';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_ADMIN_RATE_LIMITS } from '../admin-rate-limit/admin-rate-limits.js';
import type { CachePurger } from '../cache-purge/cache-purger.js';
import { buildOpenApiDocument } from '../http/openapi.js';
import {
  type ApiResponse,
  type ControlPlaneHarness,
  json,
  PLATFORM_ADMIN,
  startControlPlane,
} from '../testing/control-plane-harness.js';

/**
 * Every route the app registers, against the authorization policy: an admin of tenant A naming any of
 * tenant B's resources gets the very answer an unknown id gets and changes nothing, a viewer of B writes
 * nothing, no credential is 401, and the platform's own endpoints are refused to tenant admins. A route
 * the table below does not classify fails the test, so no endpoint skips these checks.
 */

interface Ids {
  tenant: string;
  origin: string;
  route: string;
  key: string;
  user: string;
  certificate: string;
  domain: string;
}
type FromIds = (ids: Ids) => unknown;

type RouteCheck =
  /** Outside the admin API: served to anyone. */
  | { kind: 'public' }
  /** The platform's own endpoints: no tenant's admin or viewer may use them. */
  | { kind: 'platform-admin'; body?: FromIds }
  /** Names one of B's resources (path, body or query): as if it did not exist to A; a viewer of B only reads. */
  | {
      kind: 'tenant-scoped';
      body?: FromIds;
      query?: (ids: Ids) => string;
      /** A POST that only reads (a viewer may send it; it appends nothing). */
      readLike?: true;
      /** A GET of what only the tenant's admins see (a viewer gets 403). */
      adminsOnly?: true;
    }
  /** A list: A's admin sees nothing of B in it. */
  | { kind: 'list' };

const scoped = (options: Omit<Extract<RouteCheck, { kind: 'tenant-scoped' }>, 'kind'> = {}): RouteCheck => ({
  kind: 'tenant-scoped',
  ...options,
});
const byTenant = scoped({ query: (t) => `tenant_id=${t.tenant}` });
const list: RouteCheck = { kind: 'list' };
const publicRoute: RouteCheck = { kind: 'public' };

/** The position of B's creation: B had a config from there on. */
let positionOfB = '';
/** The newest position once every tenant was set up. */
let positionAfterSetup = '';
/** B's config document (read in setup): a valid body for plan and apply. */
let documentOfB: unknown;
let certificatePem = '';
let privateKeyPem = '';

const explainBody = { method: 'GET', host: 'authz-b.example.com', path: '/b/x' };

const TABLE: Record<string, RouteCheck | RouteCheck[]> = {
  'GET /healthz': publicRoute,
  'GET /readyz': publicRoute,
  'GET /openapi.json': publicRoute,
  'GET /schemas/tenant-config.json': publicRoute,
  'GET /docs': publicRoute,
  'GET /console': publicRoute,
  'GET /console/': publicRoute,
  'GET /console/config.json': publicRoute,
  'POST /console/dev-session': publicRoute,

  'POST /api/v1/tenants': {
    kind: 'platform-admin',
    body: () => ({ name: 'probe', subdomain: 'authz-probe' }),
  },
  'GET /api/v1/tenants': list,
  'GET /api/v1/tenants/:id': scoped(),
  'PATCH /api/v1/tenants/:id': [
    scoped({ body: () => ({ name: 'renamed' }) }),
    // Fields only platform admins change: to a caller who cannot see B, as unknown as any other change.
    scoped({ body: () => ({ subdomain: 'authz-moved' }) }),
    scoped({ body: () => ({ clerk_org_id: 'org_authz_moved' }) }),
    scoped({ body: () => ({ settings: { cache: { max_bytes: TENANT_CACHE_MAX_BYTES_LIMIT } } }) }),
  ],
  'DELETE /api/v1/tenants/:id': scoped(),

  'POST /api/v1/users': scoped({
    body: (t) => ({
      tenant_id: t.tenant,
      clerk_user_id: 'user_authz_probe',
      email: 'p@example.com',
      role: 'viewer',
    }),
  }),
  'GET /api/v1/users': [list, byTenant],
  'GET /api/v1/users/:id': scoped(),
  'PATCH /api/v1/users/:id': [
    scoped({ body: () => ({ role: 'member' }) }),
    scoped({ body: () => ({ role: 'owner' }) }),
  ],
  'DELETE /api/v1/users/:id': scoped(),

  'POST /api/v1/origins': scoped({
    body: (t) => ({ tenant_id: t.tenant, name: 'probe', url: 'https://probe.example.com' }),
  }),
  'GET /api/v1/origins': [list, byTenant],
  'GET /api/v1/origins/:id': scoped(),
  'PATCH /api/v1/origins/:id': [
    scoped({ body: () => ({ url: 'https://evil.example.com' }) }),
    scoped({ body: (t) => ({ tls: { client_certificate_id: t.certificate } }) }),
  ],
  'DELETE /api/v1/origins/:id': scoped(),

  'POST /api/v1/routes': [
    scoped({
      body: (t) => ({
        tenant_id: t.tenant,
        origin_id: t.origin,
        path_pattern: '/probe',
        auth_mode: 'public',
      }),
    }),
    // The caller's own origin in a route of B.
    scoped({
      body: (t) => ({
        tenant_id: t.tenant,
        origin_id: originOfA,
        path_pattern: '/probe',
        auth_mode: 'public',
      }),
    }),
  ],
  'GET /api/v1/routes': [list, byTenant],
  'GET /api/v1/routes/:id': scoped(),
  'PATCH /api/v1/routes/:id': [
    scoped({ body: () => ({ auth_mode: 'public' }) }),
    scoped({ body: () => ({ origin_id: originOfA }) }),
    scoped({ body: (t) => ({ match: { hosts: [t.domain] } }) }),
  ],
  'DELETE /api/v1/routes/:id': scoped(),
  'POST /api/v1/routes/:id/cache/purge': scoped(),

  'POST /api/v1/api-keys': scoped({ body: (t) => ({ tenant_id: t.tenant, name: 'probe' }) }),
  'GET /api/v1/api-keys': [list, byTenant],
  'GET /api/v1/api-keys/:id': scoped(),
  'PATCH /api/v1/api-keys/:id': scoped({ body: () => ({ quota: null }) }),
  'POST /api/v1/api-keys/:id/rotate': [
    scoped({ body: () => ({}) }),
    scoped({ body: () => ({ grace_period_seconds: 0 }) }),
  ],
  'POST /api/v1/api-keys/:id/revoke': scoped({ body: () => ({ reason: 'probe' }) }),
  'DELETE /api/v1/api-keys/:id': scoped(),

  'POST /api/v1/certificates': scoped({
    body: (t) => ({
      tenant_id: t.tenant,
      domains: [t.domain],
      certificate_pem: certificatePem,
      private_key_pem: privateKeyPem,
    }),
  }),
  'GET /api/v1/certificates': [list, byTenant],
  'GET /api/v1/certificates/:id': scoped(),
  'POST /api/v1/certificates/:id/reseal': scoped(),
  'DELETE /api/v1/certificates/:id': scoped(),

  'POST /api/v1/tenants/:id/cache/purge': [
    scoped({ body: () => ({}) }),
    scoped({ body: () => ({ tags: ['probe'], prefixes: ['/b/'], soft: true }) }),
  ],
  'POST /api/v1/tenants/:id/domains': [
    scoped({ body: () => ({ domain: 'api.authz-probe.example' }) }),
    // An assignment without verification is for platform admins.
    scoped({ body: () => ({ domain: 'api.authz-probe.example', verified: true }) }),
  ],
  'GET /api/v1/tenants/:id/domains': scoped(),
  'GET /api/v1/tenants/:id/domains/:domain': scoped(),
  'POST /api/v1/tenants/:id/domains/:domain/verify': scoped(),
  'DELETE /api/v1/tenants/:id/domains/:domain': scoped(),

  'POST /api/v1/tenants/:id/config/plan': scoped({ body: () => documentOfB, readLike: true }),
  'POST /api/v1/tenants/:id/config/apply': scoped({ body: () => documentOfB }),
  'POST /api/v1/tenants/:id/config/rollback': [
    scoped({ body: () => ({ to_position: '1' }) }),
    scoped({ body: () => ({ to_position: positionOfB, dry_run: true }) }),
  ],
  'GET /api/v1/tenants/:id/config': [scoped(), scoped({ query: () => `at_position=${positionOfB}` })],
  'GET /api/v1/tenants/:id/config/document': scoped(),
  'GET /api/v1/tenants/:id/config/diff': [
    scoped({ query: () => `from=${positionOfB}` }),
    scoped({ query: () => `from=${positionOfB}&to=${positionAfterSetup}` }),
  ],
  'GET /api/v1/tenants/:id/config/history': scoped({ adminsOnly: true }),
  'GET /api/v1/tenants/:id/rollout': [scoped(), scoped({ query: () => `min_position=${positionOfB}` })],
  'POST /api/v1/tenants/:id/explain': [
    scoped({ body: () => explainBody, readLike: true }),
    scoped({ body: () => ({ ...explainBody, at_position: positionOfB }), readLike: true }),
  ],

  'GET /api/v1/usage': [
    byTenant,
    scoped({ query: (t) => `api_key_id=${t.key}` }),
    scoped({ query: (t) => `tenant_id=${t.tenant}&route_id=${t.route}&user_id=user_authz_b_owner` }),
  ],
  'GET /api/v1/audit-log': [
    list,
    scoped({ query: (t) => `tenant_id=${t.tenant}`, adminsOnly: true }),
    scoped({ query: (t) => `tenant_id=${t.tenant}&resource_id=${t.origin}`, adminsOnly: true }),
  ],

  'POST /api/v1/admin/republish-snapshots': { kind: 'platform-admin' },
  'POST /api/v1/admin/replay': { kind: 'platform-admin' },
  'GET /api/v1/admin/replay': { kind: 'platform-admin' },
};

/** A's own requests naming one of B's resources (or names) in a reference. */
const CROSS_REFERENCES: Array<[method: string, path: (ids: Ids) => string, body?: FromIds]> = [
  ['PATCH', () => `/api/v1/routes/${routeOfA}`, (t) => ({ origin_id: t.origin })],
  [
    'POST',
    () => '/api/v1/routes',
    (t) => ({ tenant_id: tenantA, origin_id: t.origin, path_pattern: '/x', auth_mode: 'public' }),
  ],
  ...(['plan', 'apply'] as const).flatMap(
    (step): Array<[string, () => string, FromIds]> => [
      [
        'POST',
        () => `/api/v1/tenants/${tenantA}/config/${step}`,
        (t) => ({
          ...documentOfA,
          origins: [...documentOfA.origins, { id: t.origin, name: 'o', url: 'https://o.example.com' }],
        }),
      ],
      [
        'POST',
        () => `/api/v1/tenants/${tenantA}/config/${step}`,
        (t) => ({
          ...documentOfA,
          routes: [
            ...documentOfA.routes,
            { id: t.route, origin_id: originOfA, path_pattern: '/r', auth_mode: 'public' },
          ],
        }),
      ],
      [
        'POST',
        () => `/api/v1/tenants/${tenantA}/config/${step}`,
        (t) => ({
          ...documentOfA,
          routes: [...documentOfA.routes, { origin_id: t.origin, path_pattern: '/o', auth_mode: 'public' }],
        }),
      ],
      [
        'POST',
        () => `/api/v1/tenants/${tenantA}/config/${step}`,
        (t) => ({
          ...documentOfA,
          origins: [
            ...documentOfA.origins,
            { name: 'm', url: 'https://m.example.com', tls: { client_certificate_id: t.certificate } },
          ],
        }),
      ],
      [
        'POST',
        () => `/api/v1/tenants/${tenantA}/config/${step}`,
        (t) => ({ ...documentOfA, tenant: { ...(documentOfA['tenant'] as object), id: t.tenant } }),
      ],
      // B's origin deep in a route of the document: a new route's split and override, an existing one's split.
      [
        'POST',
        () => `/api/v1/tenants/${tenantA}/config/${step}`,
        (t) => ({
          ...documentOfA,
          routes: [
            ...documentOfA.routes,
            {
              origin_id: originOfA,
              path_pattern: '/split',
              auth_mode: 'public',
              traffic_split: {
                origins: [
                  { origin_id: originOfA, weight: 1 },
                  { origin_id: t.origin, weight: 1 },
                ],
                overrides: [{ header: 'x-canary', value: 'on', origin_id: t.origin }],
              },
            },
          ],
        }),
      ],
      [
        'POST',
        () => `/api/v1/tenants/${tenantA}/config/${step}`,
        (t) => ({
          ...documentOfA,
          routes: documentOfA.routes.map((route) => ({
            ...(route as object),
            traffic_split: {
              origins: [
                { origin_id: originOfA, weight: 1 },
                { origin_id: t.origin, weight: 0 },
              ],
            },
          })),
        }),
      ],
    ],
  ),
  [
    'PATCH',
    () => `/api/v1/routes/${routeOfA}`,
    (t) => ({
      traffic_split: {
        origins: [
          { origin_id: originOfA, weight: 1 },
          { origin_id: t.origin, weight: 1 },
        ],
      },
    }),
  ],
  ['POST', () => `/api/v1/tenants/${tenantA}/explain`, (t) => ({ method: 'GET', host: t.domain, path: '/' })],
  [
    'POST',
    () => '/api/v1/origins',
    (t) => ({
      tenant_id: tenantA,
      name: 'm',
      url: 'https://m.example.com',
      tls: { client_certificate_id: t.certificate },
    }),
  ],
  ['PATCH', () => `/api/v1/origins/${originOfA}`, (t) => ({ tls: { client_certificate_id: t.certificate } })],
  ['PATCH', () => `/api/v1/routes/${routeOfA}`, (t) => ({ match: { hosts: [t.domain] } })],
  ['GET', (t) => `/api/v1/tenants/${tenantA}/domains/${t.domain}`],
  ['POST', (t) => `/api/v1/tenants/${tenantA}/domains/${t.domain}/verify`],
  ['DELETE', (t) => `/api/v1/tenants/${tenantA}/domains/${t.domain}`],
  [
    'POST',
    () => '/api/v1/certificates',
    (t) => ({
      tenant_id: tenantA,
      domains: [t.domain],
      certificate_pem: certificatePem,
      private_key_pem: privateKeyPem,
    }),
  ],
  ['GET', (t) => `/api/v1/usage?tenant_id=${tenantA}&route_id=${t.route}`],
  ['GET', (t) => `/api/v1/audit-log?tenant_id=${tenantA}&resource_id=${t.origin}`],
];

let cp: ControlPlaneHarness;
let redis: RedisClient;
const purges: string[] = [];
const b: Ids = {
  tenant: '',
  origin: '',
  route: '',
  key: '',
  user: '',
  certificate: '',
  domain: 'api.authz-b.example',
};
const noIds = (domain: string): Ids => ({
  tenant: '',
  origin: '',
  route: '',
  key: '',
  user: '',
  certificate: '',
  domain,
});
/** B's resources that ended (deleted, revoked) and a domain B claims, unverified. */
const endedOfB: readonly [string, Ids] = ["B's ended", noIds('pending.authz-b.example')];
/** A deleted tenant C and its resources, as they were. */
const deletedTenant: readonly [string, Ids] = ['deleted C', noIds('api.authz-c.example')];
/** What only B's own answers hold: never in an answer to A's admin. */
const secretsOfB = /authz-[bc]|org_authz_[bc]|@[bc]\.example/;
let tenantA = '';
let originOfA = '';
let routeOfA = '';
let documentOfA: { origins: unknown[]; routes: unknown[] } & Record<string, unknown>;
/**
 * Callers who may not see B: A's admins (by A's Clerk org in either token version, by A's user list), an
 * admin B removed, A's org member, the admin of an org no tenant has, and the org admin and owner of a
 * deleted tenant C.
 */
const OUTSIDERS = [
  "A's org admin",
  "A's owner",
  "B's removed admin",
  "A's org member",
  "A's org admin (v1 token)",
  'the admin of an org no tenant has',
  "deleted C's org admin",
  "deleted C's owner",
] as const;
/**
 * The outsiders asked in every form (VARIANTS): one a path of the policy (authorize.ts) decides by, the
 * token's org and the tenant's user list. Every outsider has no access to B, by one of those two paths,
 * and a request's form only changes how B's resource is named and what is around the authorizer's
 * answer, never that answer: the others (another role or token version on the same path, a membership of
 * B that ended, a deleted tenant's) are asked each route as documented.
 */
const EVERY_FORM: ReadonlySet<string> = new Set(["A's org admin", "A's owner"]);
const outsiders: Array<[(typeof OUTSIDERS)[number], string]> = [];
let ownerOfB = '';
/** Read access to B: by its user list, by its Clerk org (member, a custom role), and an admin B made a viewer. */
const viewersOfB: Array<[string, string]> = [];
/** The viewers asked in every form: one a path of the policy, as EVERY_FORM. */
const VIEWERS_IN_EVERY_FORM: ReadonlySet<string> = new Set(["B's viewer", "B's org member"]);
/**
 * Tokens no route may take, each naming a platform admin (taken, it would be allowed everything):
 * signed by another Clerk instance's key, issued by another instance, expired, not valid yet, no
 * session's (pending, impersonated, a JWT template's).
 */
const refusedTokens: Array<[string, string]> = [];

const recordingPurger: CachePurger = {
  purgeRoute: async (tenantId) => void purges.push(tenantId),
  purgeTenant: async (tenantId) => void purges.push(tenantId),
  purgeTags: async (tenantId) => void purges.push(tenantId),
};

beforeAll(async () => {
  redis = createRedisClient({ url: TEST_INFRA.redisUrl, commandTimeoutMs: 1_000, name: 'route-authz-test' });
  cp = await startControlPlane({
    withReadSide: true,
    // How long a read waits for read models behind its X-Min-Position (the last test stops them).
    minPositionWaitMs: 50,
    certificateKeyRing: keyRing(randomBytes(32).toString('base64')),
    cachePurger: recordingPurger,
    rolloutRedis: redis,
    // Hundreds of requests of one caller: no limit may answer one of them in place of the route.
    authFailures: { perMinute: 100_000, trustedProxies: [] },
    adminRateLimits: {
      limits: { ...DEFAULT_ADMIN_RATE_LIMITS, userRequests: { perMinute: 100_000, burst: 100_000 } },
    },
  });
  const post = async (path: string, body: unknown) => {
    const response = await cp.request('POST', path, { body });
    expect(response.status, `${path}: ${JSON.stringify(response.body)}`).toBe(201);
    return json(response)['id'] as string;
  };
  tenantA = await post('/api/v1/tenants', {
    name: 'A',
    subdomain: 'authz-a',
    clerk_org_id: 'org_authz_a',
  });
  originOfA = await post('/api/v1/origins', { tenant_id: tenantA, name: 'a', url: 'https://a.example.com' });
  routeOfA = await post('/api/v1/routes', {
    tenant_id: tenantA,
    origin_id: originOfA,
    path_pattern: '/a/*',
    auth_mode: 'public',
  });
  await post('/api/v1/users', {
    tenant_id: tenantA,
    clerk_user_id: 'user_authz_a_owner',
    email: 'owner@a.example.com',
    role: 'owner',
  });
  b.tenant = await post('/api/v1/tenants', { name: 'B', subdomain: 'authz-b', clerk_org_id: 'org_authz_b' });
  positionOfB = (await cp.store.headPosition()).toString();
  b.origin = await post('/api/v1/origins', { tenant_id: b.tenant, name: 'b', url: 'https://b.example.com' });
  b.route = await post('/api/v1/routes', {
    tenant_id: b.tenant,
    origin_id: b.origin,
    path_pattern: '/b/*',
    auth_mode: 'public',
  });
  b.key = await post('/api/v1/api-keys', { tenant_id: b.tenant, name: 'b-key' });
  b.user = await post('/api/v1/users', {
    tenant_id: b.tenant,
    clerk_user_id: 'user_authz_b_owner',
    email: 'owner@b.example.com',
    role: 'owner',
  });
  const demoted = await post('/api/v1/users', {
    tenant_id: b.tenant,
    clerk_user_id: 'user_authz_b_demoted',
    email: 'demoted@b.example.com',
    role: 'admin',
  });
  const demotion = await cp.request('PATCH', `/api/v1/users/${demoted}`, { body: { role: 'viewer' } });
  expect(demotion.status, JSON.stringify(demotion.body)).toBe(200);
  await post('/api/v1/users', {
    tenant_id: b.tenant,
    clerk_user_id: 'user_authz_b_viewer',
    email: 'viewer@b.example.com',
    role: 'viewer',
  });
  await post(`/api/v1/tenants/${b.tenant}/domains`, { domain: b.domain, verified: true });
  const ca = await createTestCa();
  const certificate = await issueTestCertificate(ca, { dnsNames: [b.domain] });
  certificatePem = certificate.chainPem;
  privateKeyPem = certificate.privateKeyPem;
  b.certificate = await post('/api/v1/certificates', {
    tenant_id: b.tenant,
    domains: [b.domain],
    certificate_pem: certificatePem,
    private_key_pem: privateKeyPem,
  });
  endedOfB[1].tenant = b.tenant;
  endedOfB[1].origin = await post('/api/v1/origins', {
    tenant_id: b.tenant,
    name: 'gone',
    url: 'https://g.example.com',
  });
  endedOfB[1].route = await post('/api/v1/routes', {
    tenant_id: b.tenant,
    origin_id: endedOfB[1].origin,
    path_pattern: '/gone',
    auth_mode: 'public',
  });
  endedOfB[1].key = await post('/api/v1/api-keys', { tenant_id: b.tenant, name: 'gone' });
  endedOfB[1].user = await post('/api/v1/users', {
    tenant_id: b.tenant,
    clerk_user_id: 'user_authz_b_gone',
    email: 'gone@b.example.com',
    role: 'admin',
  });
  endedOfB[1].certificate = await post('/api/v1/certificates', {
    tenant_id: b.tenant,
    domains: [b.domain],
    certificate_pem: certificatePem,
    private_key_pem: privateKeyPem,
  });
  const pending = await cp.request('POST', `/api/v1/tenants/${b.tenant}/domains`, {
    body: { domain: endedOfB[1].domain },
  });
  expect(pending.status, JSON.stringify(pending.body)).toBe(201);
  for (const path of [
    `/api/v1/routes/${endedOfB[1].route}`,
    `/api/v1/origins/${endedOfB[1].origin}`,
    `/api/v1/api-keys/${endedOfB[1].key}`,
    `/api/v1/users/${endedOfB[1].user}`,
    `/api/v1/certificates/${endedOfB[1].certificate}`,
  ]) {
    const deleted = await cp.request('DELETE', path);
    expect(deleted.status, `${path}: ${JSON.stringify(deleted.body)}`).toBe(204);
  }
  // A deleted tenant C and what it had.
  const c = deletedTenant[1];
  c.tenant = await post('/api/v1/tenants', { name: 'C', subdomain: 'authz-c', clerk_org_id: 'org_authz_c' });
  c.origin = await post('/api/v1/origins', { tenant_id: c.tenant, name: 'c', url: 'https://c.example.com' });
  c.route = await post('/api/v1/routes', {
    tenant_id: c.tenant,
    origin_id: c.origin,
    path_pattern: '/c',
    auth_mode: 'public',
  });
  c.key = await post('/api/v1/api-keys', { tenant_id: c.tenant, name: 'c' });
  c.user = await post('/api/v1/users', {
    tenant_id: c.tenant,
    clerk_user_id: 'user_authz_c_owner',
    email: 'owner@c.example.com',
    role: 'owner',
  });
  await post(`/api/v1/tenants/${c.tenant}/domains`, { domain: c.domain, verified: true });
  const certificateOfC = await issueTestCertificate(ca, { dnsNames: [c.domain] });
  c.certificate = await post('/api/v1/certificates', {
    tenant_id: c.tenant,
    domains: [c.domain],
    certificate_pem: certificateOfC.chainPem,
    private_key_pem: certificateOfC.privateKeyPem,
  });
  const deleted = await cp.request('DELETE', `/api/v1/tenants/${c.tenant}`);
  expect(deleted.status, JSON.stringify(deleted.body)).toBe(204);
  // B's gateways report a snapshot: its rollout status is there to read (for those who may).
  await cp.db.pool.query(
    `insert into snapshot_state (tenant_id, version, status, snapshot, event_time) values ($1, 1, 'live', '{}', now())`,
    [b.tenant],
  );
  await cp.readModelsCaughtUp();
  positionAfterSetup = (await cp.store.headPosition()).toString();
  const document = await cp.request('GET', `/api/v1/tenants/${b.tenant}/config/document`);
  expect(document.status, JSON.stringify(document.body)).toBe(200);
  documentOfB = json(document)['document'];
  const ofA = await cp.request('GET', `/api/v1/tenants/${tenantA}/config/document`);
  documentOfA = json(ofA)['document'] as typeof documentOfA;
  outsiders.push(
    [
      "A's org admin",
      await cp.token({ userId: 'user_authz_a_admin', orgId: 'org_authz_a', orgRole: 'admin' }),
    ],
    [
      "A's org admin (v1 token)",
      await cp.token({ userId: 'user_authz_a_admin', orgId: 'org_authz_a', orgRole: 'admin', version: 1 }),
    ],
    ["A's owner", await cp.token({ userId: 'user_authz_a_owner' })],
    ["B's removed admin", await cp.token({ userId: 'user_authz_b_gone' })],
    [
      "A's org member",
      await cp.token({ userId: 'user_authz_a_member', orgId: 'org_authz_a', orgRole: 'member' }),
    ],
    [
      'the admin of an org no tenant has',
      await cp.token({ userId: 'user_authz_lone', orgId: 'org_authz_lone', orgRole: 'admin' }),
    ],
    [
      "deleted C's org admin",
      await cp.token({ userId: 'user_authz_c_admin', orgId: 'org_authz_c', orgRole: 'admin' }),
    ],
    ["deleted C's owner", await cp.token({ userId: 'user_authz_c_owner' })],
  );
  refusedTokens.push(
    [
      "another Clerk instance's key",
      await signClerkToken(await createClerkTestKeys(), { userId: PLATFORM_ADMIN }),
    ],
    [
      'another issuer',
      await cp.token({ userId: PLATFORM_ADMIN, issuer: 'https://other.clerk.accounts.dev' }),
    ],
    ['expired', await cp.token({ userId: PLATFORM_ADMIN, expiresInSeconds: -60 })],
    ['not valid yet', await cp.token({ userId: PLATFORM_ADMIN, notBeforeInSeconds: 600 })],
    ['a pending session', await cp.token({ userId: PLATFORM_ADMIN, sessionStatus: 'pending' })],
    ['an impersonation', await cp.token({ userId: PLATFORM_ADMIN, actorUserId: 'user_authz_support' })],
    ["a JWT template's token", await signClerkTemplateToken(cp.keys, { userId: PLATFORM_ADMIN })],
  );

  ownerOfB = await cp.token({ userId: 'user_authz_b_owner' });
  viewersOfB.push(
    ["B's viewer", await cp.token({ userId: 'user_authz_b_viewer' })],
    ["B's demoted admin", await cp.token({ userId: 'user_authz_b_demoted' })],
    [
      "B's org member",
      await cp.token({ userId: 'user_authz_b_member', orgId: 'org_authz_b', orgRole: 'member' }),
    ],
    [
      "B's org billing manager (a custom role)",
      await cp.token({
        userId: 'user_authz_b_billing',
        orgId: 'org_authz_b',
        orgRole: 'org:billing_manager',
      }),
    ],
  );
});
afterAll(async () => {
  await cp?.close();
  redis?.disconnect();
});

interface Case {
  route: string;
  method: string;
  path: string;
  check: RouteCheck;
}

/** The app's routes and the documented ones (console included), each with its checks. */
function cases(): { cases: Case[]; problems: string[] } {
  const problems: string[] = [];
  const served = new Set(cp.routes.map(({ method, path }) => `${method} ${path}`));
  const documented = Object.entries(buildOpenApiDocument().paths as Record<string, object>).flatMap(
    ([path, item]) =>
      Object.keys(item).map(
        (method) => `${method.toUpperCase()} ${path.replace(/\{([A-Za-z_]+)\}/g, ':$1')}`,
      ),
  );
  for (const route of documented) {
    if (route.includes(' /api/v1/') && !served.has(route)) {
      problems.push(
        `${route}: documented, but the test's control plane does not serve it (give the harness its part)`,
      );
    }
  }
  const all = new Set([...served, ...documented]);
  const found: Case[] = [];
  for (const route of all) {
    const [method = '', path = ''] = route.split(' ');
    const checks = TABLE[route];
    if (checks === undefined) {
      problems.push(`${route}: not classified in route-authorization.int.test.ts (add it to TABLE)`);
      continue;
    }
    for (const check of [checks].flat()) {
      if ((check.kind === 'public') !== !path.startsWith('/api/v1/')) {
        problems.push(`${route}: only routes outside /api/v1 are public`);
        continue;
      }
      found.push({ route, method, path, check });
    }
  }
  for (const route of Object.keys(TABLE))
    if (!all.has(route)) problems.push(`${route}: in TABLE, not served`);
  return { cases: found, problems };
}

const PARAM_KIND: Record<string, keyof Ids> = {
  tenants: 'tenant',
  users: 'user',
  origins: 'origin',
  routes: 'route',
  'api-keys': 'key',
  certificates: 'certificate',
};

/** The route's path with its parameters filled from `ids`; `:id` is the resource of its collection. */
function pathWith(c: Case, ids: Ids): string {
  const collection = c.path.split('/')[3] ?? '';
  const filled = c.path
    .split('/')
    .map((segment) => {
      if (segment === ':domain') return ids.domain;
      if (segment !== ':id') {
        if (segment.startsWith(':')) throw new Error(`${c.route}: no id of tenant B for ${segment}`);
        return segment;
      }
      const kind = PARAM_KIND[collection];
      if (kind === undefined) throw new Error(`${c.route}: no id of tenant B for :id of ${collection}`);
      return ids[kind];
    })
    .join('/');
  const query = c.check.kind === 'tenant-scoped' ? c.check.query?.(ids) : undefined;
  return query ? `${filled}?${query}` : filled;
}

/** How a request is sent besides its route's own form: each must answer B's ids as unknown ones. */
interface Variant {
  name: string;
  headers?: () => Record<string, string>;
  /** The body instead of the route's own (a body the route refuses). */
  body?: unknown;
  /** Each id (and domain) as sent: another spelling of it (upper case, percent-encoded). */
  spell?: (id: string) => string;
  /** `spell` is a URL's spelling: the body's ids are sent as they are. */
  spellsUrlOnly?: true;
  /** Appended to the route's query. */
  query?: string;
  /** The path as sent, from the route's. */
  spelling?: (path: string) => string;
  /**
   * The path as sent is no route's: paths are matched exactly, so it is the 404 of an unknown path,
   * whoever asks (under /api/v1 after the credential is checked).
   */
  noRoute?: true;
  /** A GET sent as HEAD (express answers it with the GET's handler). */
  head?: true;
}

const VARIANTS: Variant[] = [
  { name: 'as documented' },
  { name: 'ids in upper case', spell: (id) => id.toUpperCase() },
  {
    name: 'ids percent-encoded',
    spell: (id) => (id === '' ? id : `%${id.charCodeAt(0).toString(16)}${id.slice(1)}`),
    spellsUrlOnly: true,
  },
  { name: 'If-Match', headers: () => ({ 'if-match': '"1"' }) },
  { name: 'If-None-Match', headers: () => ({ 'if-none-match': '"1"' }) },
  { name: 'Idempotency-Key', headers: () => ({ 'idempotency-key': randomUUID() }) },
  { name: 'X-Min-Position', headers: () => ({ 'x-min-position': '1' }) },
  { name: 'a body the route refuses', body: { probe: true } },
  { name: 'wait_for_rollout', query: 'wait_for_rollout=1ms' },
  { name: 'trailing slash', spelling: (path) => path.replace(/(\?|$)/, '/$1'), noRoute: true },
  { name: 'upper-case prefix', spelling: (path) => path.replace('/api/v1/', '/API/V1/'), noRoute: true },
  { name: 'HEAD', head: true },
];

function spelledAs(variant: Variant, ids: Ids): Ids {
  const { spell } = variant;
  if (spell === undefined) return ids;
  const spelled = { ...ids };
  for (const name of Object.keys(ids) as (keyof Ids)[]) spelled[name] = spell(ids[name]);
  return spelled;
}

/** The request a case sends in a variant's form. */
function requestOf(c: Case, ids: Ids, variant: Variant) {
  const sent = spelledAs(variant, ids);
  const own = 'body' in c.check ? c.check.body?.(variant.spellsUrlOnly ? ids : sent) : undefined;
  const body = c.method === 'GET' ? undefined : (variant.body ?? own);
  const path = (variant.spelling ?? ((given: string) => given))(pathWith(c, sent));
  const query = variant.query ? `${path.includes('?') ? '&' : '?'}${variant.query}` : '';
  const method = variant.head && c.method === 'GET' ? 'HEAD' : c.method;
  return { method, path: `${path}${query}`, body, headers: variant.headers?.() };
}

function ask(
  c: Case,
  token: string | null,
  ids: Ids,
  variant: Variant = VARIANTS[0] as Variant,
): Promise<ApiResponse> {
  const { method, path, body, headers } = requestOf(c, ids, variant);
  return cp.request(method, path, {
    token,
    ...(body !== undefined ? { body } : {}),
    ...(headers ? { headers } : {}),
  });
}

/**
 * The variants that send this case something else than its documented form: HEAD is a GET's, a refused
 * body a non-GET's, and a URL's spelling of ids changes nothing in a URL naming none.
 */
function variantsOf(c: Case, among: readonly Variant[] = VARIANTS): Variant[] {
  const documented = JSON.stringify(requestOf(c, b, VARIANTS[0] as Variant));
  return among.filter(
    (variant) => variant === VARIANTS[0] || JSON.stringify(requestOf(c, b, variant)) !== documented,
  );
}

const unknownIds = (): Ids => ({
  tenant: randomUUID(),
  origin: randomUUID(),
  route: randomUUID(),
  key: randomUUID(),
  user: randomUUID(),
  certificate: randomUUID(),
  domain: `api.unknown-${randomUUID().slice(0, 8)}.example`,
});

/** Headers that differ between any two answers: what they hold is no one's resource. */
const PER_ANSWER_HEADERS = new Set(['date', 'x-request-id', 'content-length', 'keep-alive', 'connection']);

/** An answer (status, headers, body) with the ids the request named (echoed back) as placeholders. */
function withoutEcho(response: ApiResponse, ...spellings: Ids[]): unknown {
  const headers = [...response.headers].filter(([name]) => !PER_ANSWER_HEADERS.has(name));
  let text = JSON.stringify({ status: response.status, headers, body: response.body });
  for (const ids of spellings)
    for (const [name, id] of Object.entries(ids)) if (id !== '') text = text.replaceAll(id, `<${name}>`);
  return JSON.parse(text);
}

/** An answer, short enough for a list of failures. */
const brief = (answer: unknown) => JSON.stringify(answer).slice(0, 400);

const codeOf = (response: ApiResponse) =>
  (json(response)?.['error'] as { code?: unknown } | undefined)?.code ?? null;

/** Runs `request`; a non-GET must leave the event store's head where it was. */
async function unchanged(c: Case, request: () => Promise<ApiResponse>, problems: string[], who: string) {
  const head = await cp.store.headPosition();
  const response = await request();
  const after = await cp.store.headPosition();
  if (after !== head) problems.push(`${c.route} by ${who}: appended events (head ${head} → ${after})`);
  return response;
}

/**
 * Asks for B's ids and for unknown ones: the answers must be the same (ids aside), nothing appended, and
 * a request as documented answered 404 not_found.
 */
async function compareWithUnknown(
  c: Case,
  who: string,
  token: string,
  variant: Variant,
  problems: string[],
  [whose, given]: readonly [string, Ids] = ['B', b],
) {
  const named = `${c.route} by ${who} (${variant.name}, ${whose})`;
  const hidden = await unchanged(c, () => ask(c, token, given, variant), problems, who);
  const ids = unknownIds();
  const unknown = await ask(c, token, ids, variant);
  const spelled = (them: Ids) => spelledAs(variant, them);
  const seen = withoutEcho(hidden, spelled(given), given);
  const unseen = withoutEcho(unknown, spelled(ids), ids);
  if (JSON.stringify(seen) !== JSON.stringify(unseen)) {
    problems.push(`${named}: hidden id ${brief(seen)}, unknown id ${brief(unseen)}`);
  } else if (variant === VARIANTS[0] && (hidden.status !== 404 || codeOf(hidden) !== 'not_found')) {
    problems.push(`${named}: ${hidden.status} ${JSON.stringify(hidden.body)}, not 404 not_found`);
  }
  if (secretsOfB.test(JSON.stringify(hidden.body))) {
    problems.push(`${named}: leaks ${JSON.stringify(hidden.body)}`);
  }
}

// Each test walks every route, several variants each: minutes on a loaded machine are not a defect.
describe('every route of the admin API, against the authorization policy', { timeout: 180_000 }, () => {
  it('every registered and documented route is classified', () => {
    expect(cases().problems).toEqual([]);
  });

  // One test a caller: each walks every route, in every variant for EVERY_FORM.
  for (const outsider of OUTSIDERS) {
    it(`${outsider}, who may not see B, naming B's resources gets the answer of an unknown id (404) and changes nothing`, async () => {
      const problems: string[] = [];
      const token = new Map(outsiders).get(outsider) as string;
      for (const c of cases().cases) {
        if (c.check.kind !== 'tenant-scoped') continue;
        const variants = EVERY_FORM.has(outsider) ? variantsOf(c) : [VARIANTS[0] as Variant];
        for (const variant of variants) await compareWithUnknown(c, outsider, token, variant, problems);
        for (const others of [endedOfB, deletedTenant] as const) {
          await compareWithUnknown(c, outsider, token, VARIANTS[0] as Variant, problems, others);
        }
      }
      expect(problems).toEqual([]);
      expect(purges).toEqual([]);
    });
  }

  it("B's owner and a platform admin read what every tenant-scoped GET serves, B's viewers what is not for admins only", async () => {
    const problems: string[] = [];
    for (const c of cases().cases) {
      if (c.check.kind !== 'tenant-scoped' || c.method !== 'GET') continue;
      for (const [who, token] of [
        ["B's owner", ownerOfB],
        ['a platform admin', cp.adminToken],
      ]) {
        const response = await ask(c, token as string, b);
        if (response.status !== 200)
          problems.push(`${c.route} by ${who}: ${response.status} ${brief(response.body)}`);
      }
      for (const [who, token] of viewersOfB) {
        const read = await ask(c, token, b);
        const expected = c.check.adminsOnly ? 403 : 200;
        if (read.status !== expected)
          problems.push(`${c.route} by ${who}: ${read.status} ${brief(read.body)}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('a viewer of B gets 403 on every write, and a read-like POST appends nothing', async () => {
    const problems: string[] = [];
    for (const c of cases().cases) {
      if (c.check.kind !== 'tenant-scoped' || c.method === 'GET') continue;
      const readLike = c.check.readLike === true;
      for (const [who, token] of viewersOfB) {
        // A body the route refuses is a 400 to whoever may see the tenant: the viewer may.
        const forms = VIEWERS_IN_EVERY_FORM.has(who) ? variantsOf(c) : [VARIANTS[0] as Variant];
        for (const variant of forms.filter((each) => each.body === undefined)) {
          const named = `${c.route} by ${who} (${variant.name})`;
          const response = await unchanged(c, () => ask(c, token, b, variant), problems, who);
          const refused = response.status === 400 && codeOf(response) === 'validation_failed';
          if (variant.noRoute) {
            if (response.status !== 404 || codeOf(response) !== 'not_found') {
              problems.push(`${named}: ${response.status} ${JSON.stringify(response.body)}, not 404`);
            }
            continue;
          }
          if (readLike && !refused && (response.status < 200 || response.status > 299)) {
            problems.push(`${named}, read-like: ${response.status} ${JSON.stringify(response.body)}`);
          }
          if (!readLike && (response.status !== 403 || codeOf(response) !== 'forbidden')) {
            problems.push(`${named}: ${response.status} ${JSON.stringify(response.body)}, not 403`);
          }
        }
      }
    }
    expect(problems).toEqual([]);
    expect(purges).toEqual([]);
  });

  it("the platform's endpoints are refused to a tenant's admin and viewer, and change nothing", async () => {
    const problems: string[] = [];
    for (const c of cases().cases) {
      if (c.check.kind !== 'platform-admin') continue;
      for (const [who, token] of [...outsiders, ...viewersOfB]) {
        const response = await unchanged(c, () => ask(c, token, b), problems, who);
        if (response.status !== 403 && response.status !== 404) {
          problems.push(`${c.route} by ${who}: ${response.status} ${JSON.stringify(response.body)}`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it("a list holds nothing of B for a caller who may not see B, with or without B's paging cursor", async () => {
    const problems: string[] = [];
    const ofB = new RegExp(`${Object.values(b).join('|').replaceAll('.', '\\.')}|${secretsOfB.source}`);
    for (const c of cases().cases) {
      if (c.check.kind !== 'list') continue;
      // The same list to B's owner shows B: the list serves what it should.
      const toOwner = await ask(c, ownerOfB, b);
      if (!JSON.stringify(toOwner.body).includes(b.tenant)) {
        problems.push(
          `${c.route} to B's owner: shows nothing of B: ${toOwner.status} ${JSON.stringify(toOwner.body)}`,
        );
      }
      // A cursor of B's own pages (where B's list goes on) replayed by the others.
      const firstPageOfB = await ask(c, ownerOfB, b, { name: 'one a page', query: 'limit=1' });
      const cursorOfB = json(firstPageOfB)?.['next_cursor'];
      const variants: Variant[] = [VARIANTS[0] as Variant];
      if (typeof cursorOfB === 'string') variants.push({ name: "B's cursor", query: `cursor=${cursorOfB}` });
      for (const [who, token] of outsiders) {
        for (const variant of variants) {
          const response = await ask(c, token, b, variant);
          if (response.status !== 200)
            problems.push(
              `${c.route} (${variant.name}): ${response.status} ${JSON.stringify(response.body)}`,
            );
          else if (ofB.test(JSON.stringify(response.body))) {
            problems.push(
              `${c.route} to ${who} (${variant.name}): shows B: ${JSON.stringify(response.body)}`,
            );
          }
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('every admin API route answers 401 without a credential, and changes nothing', async () => {
    const problems: string[] = [];
    for (const c of cases().cases) {
      if (c.check.kind === 'public') continue;
      for (const variant of variantsOf(c)) {
        const response = await unchanged(c, () => ask(c, null, b, variant), problems, 'no caller');
        const unknownPath = variant.noRoute && response.status === 404 && codeOf(response) === 'not_found';
        if (response.status !== 401 && !unknownPath) {
          problems.push(`${c.route} (${variant.name}): ${response.status} without a credential`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it("every admin API route answers 401 unauthenticated to a platform admin's token it must not take", async () => {
    const problems: string[] = [];
    for (const c of cases().cases) {
      if (c.check.kind === 'public') continue;
      for (const [why, token] of refusedTokens) {
        const response = await unchanged(c, () => ask(c, token, b), problems, why);
        if (response.status !== 401 || codeOf(response) !== 'unauthenticated') {
          problems.push(`${c.route} (${why}): ${response.status} ${brief(response.body)}`);
        }
      }
    }
    expect(problems).toEqual([]);
    expect(purges).toEqual([]);
  });

  it("A's own requests naming B's resources answer as if they named unknown ones, and change nothing", async () => {
    const problems: string[] = [];
    const [who, token] = outsiders[0] as [string, string];
    for (const [method, path, body] of CROSS_REFERENCES) {
      for (const [whose, given] of [['B', b], endedOfB, deletedTenant] as const) {
        const named = `${method} ${path(given)} (${whose}) ${body ? JSON.stringify(body(given)).slice(0, 200) : ''}`;
        const answers = [];
        for (const ids of [given, unknownIds()]) {
          const head = await cp.store.headPosition();
          const response = await cp.request(method, path(ids), {
            token,
            ...(body ? { body: body(ids) } : {}),
          });
          if ((await cp.store.headPosition()) !== head) problems.push(`${who} ${named}: appended events`);
          answers.push(JSON.stringify(withoutEcho(response, ids)));
        }
        if (answers[0] !== answers[1])
          problems.push(`${who} ${named}: ${whose}'s ${answers[0]}, unknown ${answers[1]}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it("an Idempotency-Key B's owner used, sent by those who may not see B with B's request, never replays B's answer", async () => {
    const problems: string[] = [];
    const key = `authz-${randomUUID()}`;
    const issue = (token: string, tenantId: string) =>
      cp.request('POST', '/api/v1/api-keys', {
        token,
        body: { tenant_id: tenantId, name: 'idempotent' },
        headers: { 'idempotency-key': key },
      });
    const ofB = await issue(ownerOfB, b.tenant);
    expect(ofB.status, JSON.stringify(ofB.body)).toBe(201);
    const plaintext = String(json(ofB)['key']);
    for (const [who, token] of outsiders) {
      const head = await cp.store.headPosition();
      const sent = await issue(token, b.tenant);
      const unknown = await issue(token, unknownIds().tenant);
      if ((await cp.store.headPosition()) !== head) problems.push(`${who}: appended events`);
      if (sent.status !== 404 || codeOf(sent) !== 'not_found' || sent.headers.has('idempotent-replayed'))
        problems.push(`${who}: ${sent.status} ${brief(sent.body)}`);
      if (JSON.stringify(sent.body).includes(plaintext)) problems.push(`${who}: got B's key`);
      if (unknown.status !== sent.status) problems.push(`${who}: unknown tenant ${unknown.status}`);
    }
    expect(problems).toEqual([]);
  });

  // Last: it stops the read-model projector.
  it("with the read models behind X-Min-Position, B's ids still answer as unknown ones", async () => {
    await cp.projector?.stop();
    const renamed = await cp.request('PATCH', `/api/v1/tenants/${tenantA}`, { body: { name: 'A renamed' } });
    expect(renamed.status, JSON.stringify(renamed.body)).toBe(200);
    const ahead = renamed.headers.get('x-event-position') ?? '';
    const variant: Variant = { name: 'X-Min-Position ahead', headers: () => ({ 'x-min-position': ahead }) };
    const problems: string[] = [];
    const [who, token] = outsiders[0] as [string, string];
    for (const c of cases().cases) {
      if (c.check.kind === 'tenant-scoped') await compareWithUnknown(c, who, token, variant, problems);
    }
    expect(problems).toEqual([]);
  });
});
