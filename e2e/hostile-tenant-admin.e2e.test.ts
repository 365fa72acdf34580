import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  eventually,
  type GatewayReplica,
  type HttpResponse,
  startOrigin,
  stopAllServices,
  type TestOrigin,
  TestSystem,
} from './harness.js';

/**
 * Tenant isolation as a black box: tenant B's org admin, holding only its own token, sends every
 * operation of the admin API (enumerated from /openapi.json, so a new endpoint is attacked the day it
 * is documented) aimed at tenant A — A's ids in the path, A's tenant id, origin, route, host and
 * domain in the body and the query — and the same operations aimed at B's own tenant but pointing at
 * A's resources. Afterwards A's event log is unchanged, A's hosts serve exactly what they served
 * before on both replicas, nothing B was answered names A's resources, and nothing was a 5xx.
 */

let system: TestSystem;
let alphaOrigin: TestOrigin;
let bravoOrigin: TestOrigin;
let replicas: GatewayReplica[] = [];

const ALPHA_DOMAIN = 'shop.alpha-corp.example';
const FUTURE = new Date(Date.now() + 365 * 86_400_000).toISOString();

interface Alpha {
  tenantId: string;
  originId: string;
  routeId: string;
  keyId: string;
  key: string;
  userId: string;
}
let alpha: Alpha;
let bravoId = '';
let bravoToken = '';
let alphaDocument: Record<string, unknown> = {};

/** The query an operation documents, aimed at `tenantId`. */
function hostileQuery(tenantId: string, fields: Set<string>, template: string): string {
  const query = new URLSearchParams();
  if (fields.has('tenant_id')) query.set('tenant_id', tenantId);
  if (fields.has('from') && template.endsWith('/config/diff')) query.set('from', '1');
  const text = query.toString();
  return text ? `?${text}` : '';
}

/** Event position of the last command `created` sent, for reading it back (X-Min-Position). */
let lastPosition = '0';

async function created(method: string, path: string, body: unknown): Promise<Record<string, unknown>> {
  const response = await system.admin(method, path, { body });
  expect(response.status, `${method} ${path}: ${response.text}`).toBe(201);
  lastPosition = response.headers.get('x-event-position') ?? lastPosition;
  return response.body;
}

async function alphaEventCount(): Promise<number> {
  const { rows } = await system.database.pool.query<{ count: string }>(
    `select count(*) from event_store_events
      where stream like '%' || $1 || '%' or data::text like '%' || $1 || '%'`,
    [alpha.tenantId],
  );
  return Number(rows[0]?.count ?? 0);
}

/** What A's callers see on one replica: the status and the origin that answered, per request. */
async function alphaView(replica: GatewayReplica): Promise<string[]> {
  const requests: Array<Promise<HttpResponse>> = [
    replica.get('alpha', '/svc/orders'),
    replica.getHost(ALPHA_DOMAIN, '/svc/orders'),
    replica.get('alpha', '/keyed/orders', { 'x-api-key': alpha.key }),
    replica.get('alpha', '/keyed/orders'),
  ];
  return (await Promise.all(requests)).map(
    (response) => `${response.status} ${String(response.headers['x-origin'] ?? '-')}`,
  );
}

/** A 5xx, except the console's page when the operator has not built it (a deployment step, not input). */
function isServerError(response: { status: number; body: Record<string, unknown> }): boolean {
  const code = (response.body['error'] as { code?: string } | undefined)?.code;
  return response.status >= 500 && code !== 'console_not_built';
}

type JsonSchema = {
  $ref?: string;
  properties?: Record<string, unknown>;
  allOf?: JsonSchema[];
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
};
type Operation = { method: string; template: string; bodyFields: Set<string>; queryFields: Set<string> };

/** Every operation in /openapi.json, with the fields its JSON body may carry. */
async function documentedOperations(): Promise<Operation[]> {
  const response = await fetch(`${system.controlPlaneUrl}/openapi.json`);
  const document = (await response.json()) as {
    paths: Record<
      string,
      Record<
        string,
        {
          parameters?: Array<{ name: string; in: string }>;
          requestBody?: { content?: Record<string, { schema?: JsonSchema }> };
        }
      >
    >;
    components?: { schemas?: Record<string, JsonSchema> };
  };
  const fieldsOf = (schema: JsonSchema | undefined, into: Set<string>): Set<string> => {
    if (!schema) return into;
    const target = schema.$ref ? document.components?.schemas?.[schema.$ref.split('/').pop() ?? ''] : schema;
    for (const name of Object.keys(target?.properties ?? {})) into.add(name);
    for (const part of [...(target?.allOf ?? []), ...(target?.anyOf ?? []), ...(target?.oneOf ?? [])])
      fieldsOf(part, into);
    return into;
  };
  return Object.entries(document.paths).flatMap(([template, item]) =>
    Object.entries(item)
      .filter(([method]) => ['get', 'post', 'put', 'patch', 'delete'].includes(method))
      .map(([method, operation]) => ({
        method: method.toUpperCase(),
        template,
        bodyFields: fieldsOf(operation.requestBody?.content?.['application/json']?.schema, new Set()),
        queryFields: new Set((operation.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name)),
      })),
  );
}

/** A's id for each resource collection, as it would appear in `/api/v1/<collection>/{id}`. */
function alphaIdFor(collection: string): string {
  const ids: Record<string, string> = {
    tenants: alpha.tenantId,
    origins: alpha.originId,
    routes: alpha.routeId,
    'api-keys': alpha.keyId,
    users: alpha.userId,
  };
  return ids[collection] ?? alpha.tenantId;
}

function pathAimedAtAlpha(template: string): string {
  const collection = template.split('/')[3] ?? '';
  return template
    .replace('{id}', alphaIdFor(collection))
    .replace('{domain}', ALPHA_DOMAIN)
    .replace(/\{[^}]+\}/g, 'x');
}

/** Every field a command might read, each set to something of tenant A's (or the platform's). */
function hostileBody(tenantId: string, fields: Set<string>): Record<string, unknown> | undefined {
  if (fields.size === 0) return undefined;
  const everything: Record<string, unknown> = {
    // A's own config document with every route gone: what `apply` would be asked to make A.
    ...alphaDocument,
    routes: [],
    to_position: '1',
    tenant_id: tenantId,
    origin_id: alpha.originId,
    route_id: alpha.routeId,
    api_key_id: alpha.keyId,
    name: 'takeover',
    subdomain: 'alpha',
    domain: ALPHA_DOMAIN,
    verified: true,
    url: alphaOrigin.url,
    path_pattern: '/svc/*',
    auth_mode: 'public',
    methods: ['GET'],
    role: 'admin',
    clerk_user_id: 'user_bravo_admin',
    clerk_org_id: 'org_alpha',
    email: 'admin@bravo.example',
    scopes: ['read'],
    expires_at: FUTURE,
    position: '1',
    tenants: [alpha.tenantId],
    tags: ['all'],
  };
  return Object.fromEntries(Object.entries(everything).filter(([name]) => fields.has(name)));
}

beforeAll(async () => {
  // Certificates switched on, so their endpoints are attacked too instead of answering 503 unconfigured.
  system = await TestSystem.create({
    controlPlaneEnv: { CERTIFICATE_ENCRYPTION_KEY: randomBytes(32).toString('base64') },
  });
  [alphaOrigin, bravoOrigin] = await Promise.all([startOrigin('alpha-origin'), startOrigin('bravo-origin')]);
  await system.startControlSide();
  replicas = await system.startGateways(2);

  const alphaTenant = await created('POST', '/api/v1/tenants', {
    name: 'Alpha Corp',
    subdomain: 'alpha',
    clerk_org_id: 'org_alpha',
  });
  const tenantId = alphaTenant['id'] as string;
  const origin = await created('POST', '/api/v1/origins', {
    tenant_id: tenantId,
    name: 'alpha-origin',
    url: alphaOrigin.url,
  });
  const originId = origin['id'] as string;
  const route = await created('POST', '/api/v1/routes', {
    tenant_id: tenantId,
    origin_id: originId,
    path_pattern: '/svc/*',
    auth_mode: 'public',
  });
  await created('POST', '/api/v1/routes', {
    tenant_id: tenantId,
    origin_id: originId,
    path_pattern: '/keyed/*',
    auth_mode: 'apikey_required',
  });
  const key = await created('POST', '/api/v1/api-keys', {
    tenant_id: tenantId,
    name: 'alpha-key',
    scopes: ['read'],
    expires_at: FUTURE,
  });
  const user = await created('POST', '/api/v1/users', {
    tenant_id: tenantId,
    clerk_user_id: 'user_alpha_admin',
    email: 'admin@alpha.example',
    role: 'admin',
  });
  await created('POST', `/api/v1/tenants/${tenantId}/domains`, { domain: ALPHA_DOMAIN, verified: true });
  alpha = {
    tenantId,
    originId,
    routeId: route['id'] as string,
    keyId: key['id'] as string,
    key: key['key'] as string,
    userId: user['id'] as string,
  };

  const document = await system.admin('GET', `/api/v1/tenants/${tenantId}/config/document`, {
    headers: { 'x-min-position': lastPosition },
  });
  expect(document.status, document.text).toBe(200);
  alphaDocument = document.body['document'] as Record<string, unknown>;

  const bravoTenant = await created('POST', '/api/v1/tenants', {
    name: 'Bravo Corp',
    subdomain: 'bravo',
    clerk_org_id: 'org_bravo',
  });
  bravoId = bravoTenant['id'] as string;
  await created('POST', '/api/v1/users', {
    tenant_id: bravoId,
    clerk_user_id: 'user_bravo_admin',
    email: 'admin@bravo.example',
    role: 'admin',
  });
  bravoToken = await system.token({ userId: 'user_bravo_admin', orgId: 'org_bravo', orgRole: 'org:admin' });

  await eventually(
    "both replicas serve tenant A's hosts and key route",
    async () => {
      const views = await Promise.all(replicas.map(alphaView));
      return views.every(
        (view) => view.join() === '200 alpha-origin,200 alpha-origin,200 alpha-origin,401 -',
      );
    },
    { system, timeoutMs: 60_000 },
  );
}, 240_000);

afterAll(async () => {
  await system?.close();
  await Promise.all([alphaOrigin?.close(), bravoOrigin?.close()]);
  await stopAllServices();
});

describe('a hostile tenant admin against the whole admin API', () => {
  it("changes nothing tenant A serves, reads nothing of A's, and never gets a 5xx", async () => {
    const eventsBefore = await alphaEventCount();
    const viewsBefore = await Promise.all(replicas.map(alphaView));
    const operations = await documentedOperations();
    expect(operations.length).toBeGreaterThan(30);

    // B may point its own origins anywhere, A's origin URL included; A's ids and key are A's alone.
    const alphaSecrets = [alpha.originId, alpha.routeId, alpha.keyId, alpha.userId, alpha.key];
    const serverErrors: string[] = [];
    const leaks: string[] = [];
    const accepted: string[] = [];
    const refusedAtAlpha = new Map<number, number>();
    let acceptedForBravo = 0;
    const asBravo = (method: string, path: string, body: unknown) =>
      system.admin(method, path, { token: bravoToken, ...(body === undefined ? {} : { body }) });

    for (const { method, template, bodyFields, queryFields } of operations) {
      // Aimed at A: A's ids in the path, A's tenant in the query and the body.
      const atAlpha = `${pathAimedAtAlpha(template)}${hostileQuery(alpha.tenantId, queryFields, template)}`;
      const answer = await asBravo(method, atAlpha, hostileBody(alpha.tenantId, bodyFields));
      if (isServerError(answer)) serverErrors.push(`${method} ${atAlpha} → ${answer.status} ${answer.text}`);
      refusedAtAlpha.set(answer.status, (refusedAtAlpha.get(answer.status) ?? 0) + 1);
      if (answer.status < 400)
        accepted.push(`${method} ${template} → ${answer.status} ${answer.text.slice(0, 200)}`);

      // Aimed at B's own tenant, pointing at A's resources: may succeed, must not reach A.
      const atBravo = template
        .replace(
          '{id}',
          template.startsWith('/api/v1/tenants/') ? bravoId : alphaIdFor(template.split('/')[3] ?? ''),
        )
        .replace('{domain}', ALPHA_DOMAIN)
        .replace(/\{[^}]+\}/g, 'x');
      const own = await asBravo(
        method,
        `${atBravo}${hostileQuery(bravoId, queryFields, template)}`,
        hostileBody(bravoId, bodyFields),
      );
      if (isServerError(own)) serverErrors.push(`${method} ${atBravo} → ${own.status} ${own.text}`);
      if (own.status < 300) acceptedForBravo += 1;
      for (const response of [answer, own]) {
        const leaked = alphaSecrets.filter(
          (secret) => response.status < 400 && response.text.includes(secret),
        );
        if (leaked.length > 0) leaks.push(`${method} ${template} answered ${leaked.join(', ')}`);
      }
    }

    expect(serverErrors, serverErrors.join('\n')).toEqual([]);
    // The token is B's admin token, not a rejected one: B's own operations went through, A's were refused.
    expect(acceptedForBravo).toBeGreaterThan(5);
    expect((refusedAtAlpha.get(403) ?? 0) + (refusedAtAlpha.get(404) ?? 0)).toBeGreaterThan(
      operations.length / 2,
    );
    console.info(
      `[e2e] hostile tenant admin: answers to operations aimed at A by status ${JSON.stringify(Object.fromEntries(refusedAtAlpha))}; ${acceptedForBravo} of B's own accepted`,
    );
    // Only answers that carry nothing of A's may be 2xx (B's own listings, the documents about B).
    expect(leaks, leaks.join('\n')).toEqual([]);
    expect(
      accepted.filter((line) => line.includes(alpha.tenantId)),
      accepted.join('\n'),
    ).toEqual([]);
    expect(await alphaEventCount()).toBe(eventsBefore);

    // Whatever B did reach its own tenant has arrived at both replicas before A is looked at again.
    const marker = await system.admin('POST', '/api/v1/origins', {
      body: { tenant_id: bravoId, name: 'bravo-marker', url: bravoOrigin.url },
    });
    expect(marker.status, marker.text).toBe(201);
    const markerRoute = await system.admin('POST', '/api/v1/routes', {
      body: {
        tenant_id: bravoId,
        origin_id: marker.body['id'],
        path_pattern: '/marker/*',
        auth_mode: 'public',
      },
    });
    expect(markerRoute.status, markerRoute.text).toBe(201);
    await eventually(
      "both replicas applied tenant B's newest snapshot",
      async () => {
        const answers = await Promise.all(replicas.map((replica) => replica.get('bravo', '/marker/ready')));
        return answers.every((answer) => answer.status === 200);
      },
      { system, timeoutMs: 60_000 },
    );

    const viewsAfter = await Promise.all(replicas.map(alphaView));
    expect(viewsAfter).toEqual(viewsBefore);
    // B's explicit tries at A's hosts reached no origin on A's behalf: A's host is still A's.
    const viaHost = await Promise.all(replicas.map((replica) => replica.getHost(ALPHA_DOMAIN, '/svc/who')));
    expect(viaHost.map((response) => response.headers['x-origin'])).toEqual(['alpha-origin', 'alpha-origin']);
  }, 600_000);
});
