import { execFile } from 'node:child_process';
import path from 'node:path';
import { type RequestExplanation, requestExplanation } from '@vantageedge/shared/domain/request-explanation';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  eventually,
  type GatewayReplica,
  type HttpResponse,
  httpRequest,
  REPO_ROOT,
  startOrigin,
  stopAllServices,
  type TestOrigin,
  TestSystem,
  vantageedgeNodeArgs,
} from './harness.js';
import { eventPosition, servedVersion, whenServedEverywhere } from './served-version.js';

/**
 * `explain` against what the gateways really do: control plane, both projectors and two gateway
 * replicas as their own processes on the shared PostgreSQL, Redis and Kafka. For each request (a
 * matching route, no route, a wrong method, a revoked key, a rate-limited route, a cacheable route) the
 * explanation's route, status, limit and cache decision must be what both replicas did; and after a
 * route change, the explanation at the earlier position must still be what the replicas did then.
 */

const SUBDOMAIN = 'explain';
const HOST = `${SUBDOMAIN}.localhost`;
const LIMIT = 3;

let system: TestSystem;
let origin: TestOrigin;
let replicas: GatewayReplica[] = [];
let tenantId = '';
const routes: Record<'users' | 'limited' | 'cached' | 'posts' | 'me', string> = {
  me: '',
  users: '',
  limited: '',
  cached: '',
  posts: '',
};
let activeKey = '';
let activeKeyId = '';
let revokedKey = '';
let revokedKeyId = '';
let memberToken = '';
let outsiderToken = '';
let otherInstanceToken = '';

async function explain(
  method: string,
  pathname: string,
  { headers = {}, at }: { headers?: Record<string, string>; at?: string } = {},
): Promise<RequestExplanation> {
  const answer = await system.admin('POST', `/api/v1/tenants/${tenantId}/explain`, {
    body: { method, host: HOST, path: pathname, headers, ...(at !== undefined ? { at_position: at } : {}) },
  });
  expect(answer.status, answer.text).toBe(200);
  return requestExplanation.parse(answer.body);
}

function send(
  replica: GatewayReplica,
  method: string,
  pathname: string,
  headers: Record<string, string> = {},
) {
  return httpRequest(`${replica.url}${pathname}`, {
    method,
    headers: { host: HOST, ...headers },
    agent: replica.agent,
  });
}

/** What a replica did: status, error code, the route the origin was told, the cache and limit headers. */
function observed(response: HttpResponse) {
  let code: string | null = null;
  let route: string | null = null;
  try {
    const body = JSON.parse(response.body) as { error?: { code?: string }; route?: string };
    code = body.error?.code ?? null;
    route = body.route ?? null;
  } catch {
    // not JSON
  }
  const header = (name: string) => {
    const value = response.headers[name];
    return typeof value === 'string' ? value : undefined;
  };
  return {
    status: response.status,
    code,
    route,
    cache: header('x-cache'),
    policy: header('ratelimit-policy'),
  };
}

/** The explanation's decision as the status class and code a client sees. */
function expectAgreement(explanation: RequestExplanation, seen: ReturnType<typeof observed>, label: string) {
  if (explanation.decision.status === null) {
    expect(Math.floor(seen.status / 100), `${label}: forwarded, the origin answers`).toBe(2);
    expect(seen.route, `${label}: the route the origin was told`).toBe(explanation.route?.id);
  } else {
    expect(seen.status, label).toBe(explanation.decision.status);
    expect(seen.code, label).toBe(explanation.decision.code);
  }
}

/** The token with its signature's first character changed: same claims, signature no longer valid. */
function forged(token: string): string {
  const [header, payload, signature] = token.split('.') as [string, string, string];
  return `${header}.${payload}.${signature[0] === 'A' ? 'B' : 'A'}${signature.slice(1)}`;
}

const appliedEverywhere = (position: bigint | string) =>
  whenServedEverywhere(replicas, tenantId, position, system);

/** The tenant's config version each replica serves. */
const appliedVersions = () =>
  Promise.all(replicas.map(async (replica) => String((await servedVersion(replica, tenantId)) ?? 'none')));

const headPosition = async () =>
  (await system.database.pool.query('select value from event_store_position')).rows[0].value as string;

beforeAll(async () => {
  system = await TestSystem.create({ gatewayEnv: { GATEWAY_ACCESS_LOG_SAMPLE_RATE: '0' } });
  // The origin says which route the gateway sent the request on.
  origin = await startOrigin('explain-origin', (req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ route: req.headers['x-vantageedge-route-id'], path: req.url }));
    return true;
  });
  await system.startControlSide();
  replicas = await system.startGateways(2);

  const tenant = await system.admin('POST', '/api/v1/tenants', {
    body: { name: 'Explain', subdomain: SUBDOMAIN, clerk_org_id: 'org_explain' },
  });
  expect(tenant.status, tenant.text).toBe(201);
  tenantId = tenant.body['id'] as string;
  const backend = await system.admin('POST', '/api/v1/origins', {
    body: { tenant_id: tenantId, name: 'backend', url: origin.url },
  });
  expect(backend.status, backend.text).toBe(201);
  const route = async (name: keyof typeof routes, body: Record<string, unknown>) => {
    const created = await system.admin('POST', '/api/v1/routes', {
      body: { tenant_id: tenantId, origin_id: backend.body['id'], ...body },
    });
    expect(created.status, created.text).toBe(201);
    routes[name] = created.body['id'] as string;
  };
  await route('users', { path_pattern: '/users/:id', methods: ['GET'], auth_mode: 'apikey_required' });
  await route('limited', {
    path_pattern: '/limited/*',
    auth_mode: 'public',
    rate_limit: { algorithm: 'sliding_window', requests_per_second: 1, window_seconds: 3600, limit: LIMIT },
  });
  await route('cached', {
    path_pattern: '/cached/*',
    auth_mode: 'public',
    cache_policy: { enabled: true, ttl_seconds: 300, cache_key_pattern: 'path+query' },
  });
  await route('posts', { path_pattern: '/posts/*', auth_mode: 'public' });
  await route('me', { path_pattern: '/me', auth_mode: 'jwt_required' });
  memberToken = await system.token({ userId: 'user_member', orgId: 'org_explain' });
  outsiderToken = await system.token({ userId: 'user_outsider', orgId: 'org_elsewhere' });
  otherInstanceToken = await system.token({
    userId: 'user_member',
    orgId: 'org_explain',
    issuer: 'https://another-instance.clerk.accounts.dev',
  });
  const issue = async (name: string) => {
    const issued = await system.admin('POST', '/api/v1/api-keys', {
      body: { tenant_id: tenantId, name, scopes: [] },
    });
    expect(issued.status, issued.text).toBe(201);
    return { key: issued.body['key'] as string, id: issued.body['id'] as string };
  };
  ({ key: activeKey, id: activeKeyId } = await issue('active'));
  ({ key: revokedKey, id: revokedKeyId } = await issue('leaked'));
  const revoked = await system.admin('POST', `/api/v1/api-keys/${revokedKeyId}/revoke`, {
    body: { reason: 'e2e: leaked' },
  });
  expect(revoked.status, revoked.text).toBe(200);
  const head = await headPosition();
  await appliedEverywhere(head);
  // Explain finds a revoked key in the read models: they include the revocation too.
  const caughtUp = await system.admin('GET', `/api/v1/tenants/${tenantId}`, {
    headers: { 'x-min-position': head },
  });
  expect(caughtUp.status, caughtUp.text).toBe(200);
}, 240_000);

afterAll(async () => {
  await system?.close();
  await origin?.close();
  await stopAllServices();
});

describe('explain agrees with what two gateway replicas do', () => {
  const cases: Array<{
    label: string;
    method: string;
    path: string;
    headers?: () => Record<string, string>;
  }> = [
    { label: 'matching route', method: 'GET', path: '/users/1', headers: () => ({ 'x-api-key': activeKey }) },
    { label: 'no route', method: 'GET', path: '/nothing/here' },
    {
      label: 'wrong method',
      method: 'DELETE',
      path: '/users/1',
      headers: () => ({ 'x-api-key': activeKey }),
    },
    { label: 'revoked key', method: 'GET', path: '/users/1', headers: () => ({ 'x-api-key': revokedKey }) },
    { label: 'missing key', method: 'GET', path: '/users/1' },
    { label: 'dot segments', method: 'GET', path: '/cached/../posts/9' },
    {
      label: "Clerk token of the tenant's org",
      method: 'GET',
      path: '/me',
      headers: () => ({ authorization: `Bearer ${memberToken}` }),
    },
    {
      label: 'Clerk token of another org',
      method: 'GET',
      path: '/me',
      headers: () => ({ authorization: `Bearer ${outsiderToken}` }),
    },
    {
      label: "Clerk token signed with the instance's key but naming another issuer",
      method: 'GET',
      path: '/me',
      headers: () => ({ authorization: `Bearer ${otherInstanceToken}` }),
    },
    {
      label: 'Clerk token with a forged signature',
      method: 'GET',
      path: '/me',
      headers: () => ({ authorization: `Bearer ${forged(memberToken)}` }),
    },
  ];

  for (const { label, method, path: pathname, headers } of cases) {
    it(`${label}: ${method} ${pathname}`, async () => {
      const explanation = await explain(method, pathname, { headers: headers?.() ?? {} });
      for (const replica of replicas) {
        expectAgreement(
          explanation,
          observed(await send(replica, method, pathname, headers?.() ?? {})),
          `${label} on ${replica.id}`,
        );
      }
    });
  }

  it('names the route each request takes and why the others do not match', async () => {
    const matching = await explain('GET', '/users/1', { headers: { 'x-api-key': activeKey } });
    expect(matching.route?.id).toBe(routes.users);
    expect(matching.auth?.credential).toMatchObject({
      kind: 'api_key',
      status: 'valid',
      api_key_id: activeKeyId,
    });
    const posts = matching.routes.find((candidate) => candidate.id === routes.posts);
    expect(posts?.reason).toBe('path /users/1 does not match /posts/*');
    const wrongMethod = await explain('DELETE', '/users/1');
    expect(wrongMethod.routes.find((candidate) => candidate.id === routes.users)).toMatchObject({
      method_matches: false,
      path_matches: true,
      selected: false,
    });
    const member = await explain('GET', '/me', { headers: { authorization: `Bearer ${memberToken}` } });
    expect(member.auth?.credential).toMatchObject({
      kind: 'jwt',
      verifier: 'clerk',
      signature_checked: true,
    });
    const forgery = await explain('GET', '/me', {
      headers: { authorization: `Bearer ${forged(memberToken)}` },
    });
    expect(forgery.decision).toMatchObject({ stage: 'auth', status: 401, code: 'invalid_token' });
    const revoked = await explain('GET', '/users/1', { headers: { 'x-api-key': revokedKey } });
    expect(revoked.auth?.credential).toMatchObject({ status: 'revoked', api_key_id: revokedKeyId });
  });

  it('rate-limited: the replicas admit exactly the capacity explain reports, then answer 429', async () => {
    const explanation = await explain('GET', '/limited/x');
    expect(explanation.route?.id).toBe(routes.limited);
    expect(explanation.rate_limits?.limits).toEqual([
      expect.objectContaining({ algorithm: 'sliding_window', capacity: LIMIT }),
    ]);
    const seen = [];
    for (let i = 0; i < LIMIT + 2; i++)
      seen.push(observed(await send(replicas[i % 2]!, 'GET', '/limited/x')));
    expect(seen.map((answer) => answer.status)).toEqual([...Array(LIMIT).fill(200), 429, 429]);
    expect(seen.slice(LIMIT).map((answer) => answer.code)).toEqual(['rate_limited', 'rate_limited']);
    for (const answer of seen.slice(0, LIMIT))
      expect(answer.policy).toBe(explanation.rate_limits?.policy_header);
  });

  it('cacheable: explain says looked up, the replicas MISS then HIT; a no-store request bypasses on both', async () => {
    const explanation = await explain('GET', '/cached/a');
    expect(explanation.cache).toEqual(expect.objectContaining({ decision: 'lookup', reason: null }));
    const first = observed(await send(replicas[0]!, 'GET', '/cached/a'));
    expect(first.status).toBe(200);
    expect(['MISS', 'HIT']).toContain(first.cache);
    for (const replica of replicas) {
      await eventually(
        `${replica.id} answers from the cache`,
        async () => observed(await send(replica, 'GET', '/cached/a')).cache === 'HIT',
        { system, timeoutMs: 10_000 },
      );
    }
    // Standard mode: a client's no-cache revalidates the stored response; no-store bypasses the cache.
    const noCache = { 'cache-control': 'no-store' };
    const bypass = await explain('GET', '/cached/a', { headers: noCache });
    expect(bypass.cache).toEqual(expect.objectContaining({ decision: 'bypass', reason: 'request_no_store' }));
    for (const replica of replicas)
      expect(observed(await send(replica, 'GET', '/cached/a', noCache)).cache).toBe('BYPASS');
    const uncached = await explain('GET', '/posts/1');
    expect(uncached.cache?.decision).toBe('not_cached');
    for (const replica of replicas)
      expect(observed(await send(replica, 'GET', '/posts/1')).cache).toBeUndefined();
  });

  it('at a past position: after a route change, explain at the earlier position is what the replicas did then', async () => {
    const before = await headPosition();
    await appliedEverywhere(before);
    const versionsThen = await appliedVersions();
    expect(new Set(versionsThen).size).toBe(1);
    const then = await Promise.all(
      replicas.map(async (replica) => observed(await send(replica, 'GET', '/posts/1'))),
    );
    expect(then.map((answer) => answer.route)).toEqual([routes.posts, routes.posts]);

    const deleted = await system.admin('DELETE', `/api/v1/routes/${routes.posts}`);
    expect(deleted.status, deleted.text).toBe(204);
    await appliedEverywhere(eventPosition(deleted));
    const now = await explain('GET', '/posts/1');
    for (const replica of replicas)
      expectAgreement(now, observed(await send(replica, 'GET', '/posts/1')), `now on ${replica.id}`);
    expect(now.decision).toMatchObject({ stage: 'route', status: 404, code: 'route_not_found' });

    const past = await explain('GET', '/posts/1', { at: before });
    expect(past.position).toBe(before);
    expect(BigInt(past.version)).toBeLessThanOrEqual(BigInt(before));
    for (const [index, answer] of then.entries()) expectAgreement(past, answer, `then on replica ${index}`);
    expect(past.version).toBe(versionsThen[0]);
    expect(past.route?.id).toBe(routes.posts);
  });

  it('the CLI explains a request by its URL, for people and as JSON', async () => {
    const env = {
      ...process.env,
      VANTAGEEDGE_URL: system.controlPlaneUrl,
      VANTAGEEDGE_TOKEN: await system.token(),
      VANTAGEEDGE_CONFIG: path.join(REPO_ROOT, '.no-such-vantageedge-config.json'),
      NODE_OPTIONS: '',
    };
    const run = (args: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(
          process.execPath,
          [...vantageedgeNodeArgs(), ...args],
          { cwd: REPO_ROOT, env, timeout: 60_000 },
          (error, stdout, stderr) =>
            resolve({
              code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1,
              stdout,
              stderr,
            }),
        );
      });
    const url = `http://${HOST}/users/1`;
    const human = await run(['explain', 'GET', url, '-H', `x-api-key: ${revokedKey}`]);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toContain('Decision  401 invalid_api_key (at auth)');
    expect(human.stdout).toContain('API key "leaked" revoked');
    expect(human.stdout).not.toContain(revokedKey);
    const json = await run(['explain', 'GET', url, '-H', `x-api-key: ${activeKey}`, '--json']);
    expect(json.code, json.stderr).toBe(0);
    const answer = requestExplanation.parse(JSON.parse(json.stdout));
    expect(answer.route?.id).toBe(routes.users);
    for (const replica of replicas) {
      expectAgreement(
        answer,
        observed(await send(replica, 'GET', '/users/1', { 'x-api-key': activeKey })),
        replica.id,
      );
    }
  });
});
