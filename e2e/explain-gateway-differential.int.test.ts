// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${…} is the route policies' own value-template syntax

import { METHODS } from 'node:http';
import {
  type ControlPlaneHarness,
  json,
  startControlPlane,
} from '@vantageedge/control-plane/testing/control-plane-harness';
import {
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '@vantageedge/gateway/testing/gateway-harness';
import { errorCodeOf, type RawResponse, rawExchange } from '@vantageedge/gateway/testing/raw-exchange';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replicaSnapshot } from './compile-differential.js';
import { type ExplainedRequest, explainBody, requestBytes } from './explained-requests.js';

/**
 * Differential of explain against a gateway. One tenant whose routes exercise many policies (header,
 * query and host match conditions with priorities, methods, strip_prefix, rewrite_path and preserve_host, redirect and
 * fixed_response, a traffic split with overrides and a sticky cookie, an API key, CORS, IP rules, a
 * cache policy) is configured through the admin API; explain folds it from the event log, and an
 * in-process gateway serves the snapshot the projector folds from the same events. Generated requests
 * (methods, paths with percent-encodings, dot segments, `;` parameters and letter case, repeated and
 * empty query names, headers and cookies repeated, empty or in mixed case, Host spellings) go to the
 * gateway as raw bytes (a repeated line is really repeated) and to explain as its JSON (a list for a
 * repeated line). Explain must describe what the gateway did: the status of the stage that answers, the
 * route, the origin a split override chose, the redirect Location, the path and the Host the origin
 * received (a route with preserve_host sends the client's).
 * Seeded: the same cases every run (DIFFERENTIAL_CASES explores more).
 */

const SEED = 20_261_204;
const CASES = Number(process.env['DIFFERENTIAL_CASES'] ?? 200);
const DEADLINE_MS = 6_000;
const HOST = 'exd.localhost';

let cp: ControlPlaneHarness;
let gateway: TestGateway;
let stable: TestOrigin;
let canary: TestOrigin;
let tenantId = '';
let apiKey = '';
const originNames = new Map<string, string>();
/** Route ids by their name in routeBodies. */
const routeIds = new Map<string, string>();

/** The tenant's routes, by a name for reports: each exercises other policies. */
function routeBodies(stableId: string, canaryId: string): Record<string, Record<string, unknown>> {
  const route = (body: Record<string, unknown>) => ({ auth_mode: 'public', origin_id: stableId, ...body });
  const trafficSplit = {
    origins: [
      { origin_id: stableId, weight: 100 },
      { origin_id: canaryId, weight: 0 },
    ],
    sticky: { cookie: 'session' },
    overrides: [
      { header: 'x-canary', value: 'yes', origin_id: canaryId },
      { cookie: 'canary', value: 'on', origin_id: canaryId },
    ],
  };
  return {
    api: route({ path_pattern: '/api/*', methods: ['GET', 'HEAD'] }),
    'api-v2': route({
      path_pattern: '/api/*',
      origin_id: canaryId,
      match: { headers: [{ name: 'x-version', exact: '2' }] },
    }),
    'api-beta': route({
      path_pattern: '/api/*',
      priority: 5,
      match: { query: [{ name: 'beta', present: true }] },
      rewrite_path: { from_prefix: '/api', to_prefix: '/beta' },
    }),
    items: route({ path_pattern: '/api/items/:id', methods: ['GET', 'POST'], strip_prefix: '/api' }),
    split: route({ path_pattern: '/split/*', traffic_split: trafficSplit }),
    // The split reads the request as the route's transform leaves it.
    'split-cookieless': route({
      path_pattern: '/cookieless/*',
      traffic_split: trafficSplit,
      request_headers: { remove: ['cookie'] },
    }),
    'split-forced': route({
      path_pattern: '/forced/*',
      traffic_split: trafficSplit,
      request_headers: { set: { 'x-canary': 'yes' } },
    }),
    // The route authenticates to its origins: the gateway drops a client's own X-Api-Key line first.
    'split-partner': route({
      path_pattern: '/partner/*',
      traffic_split: {
        ...trafficSplit,
        overrides: [{ header: 'x-api-key', value: 'partner-key', origin_id: canaryId }],
      },
      request_headers: { add: { 'x-api-key': 'partner-key' } },
    }),
    old: route({
      path_pattern: '/old/*',
      origin_id: null,
      redirect: { status: 301, location: 'https://${host}/new${path}${query}' },
    }),
    fixed: route({ path_pattern: '/fixed', origin_id: null, fixed_response: { status: 203, body: 'fixed' } }),
    keyed: route({ path_pattern: '/keyed/*', auth_mode: 'apikey_required' }),
    cors: route({
      path_pattern: '/cors/*',
      cors: { allow_origins: ['https://app.example'], allow_headers: ['x-token'] },
    }),
    office: route({ path_pattern: '/office/*', ip_rules: { deny: ['127.0.0.1/32'] } }),
    cached: route({ path_pattern: '/cached/*', cache_policy: { ttl_seconds: 30 } }),
    'cookie-beta': route({
      path_pattern: '/cookie/*',
      match: { headers: [{ name: 'cookie', prefix: 'beta=' }] },
      origin_id: canaryId,
    }),
    'host-only': route({ path_pattern: '/host/*', match: { hosts: [HOST] } }),
    vhost: route({ path_pattern: '/vhost/*', preserve_host: true }),
    proto: route({ path_pattern: '/proto/*', match: { headers: [{ name: 'constructor', present: true }] } }),
    // A repeated `format` an origin reads first or last (splitting pairs at `;` or not) may reach either.
    'reports-html': route({
      path_pattern: '/reports/*',
      match: { query: [{ name: 'format', exact: 'html' }] },
    }),
    'reports-pdf': route({
      path_pattern: '/reports/*',
      auth_mode: 'apikey_required',
      match: { query: [{ name: 'format', exact: 'pdf' }] },
    }),
    'catch-all': route({ path_pattern: '/*', priority: -1, methods: ['GET'] }),
  };
}

beforeAll(async () => {
  cp = await startControlPlane({
    withReadSide: true,
    adminRateLimits: { limits: { tenantCommands: null, userRequests: null } },
  });
  [stable, canary] = await Promise.all([startTestOrigin('stable'), startTestOrigin('canary')]);
  const tenant = await cp.request('POST', '/api/v1/tenants', {
    body: { name: 'Explained', subdomain: 'exd' },
  });
  tenantId = json(tenant)['id'] as string;
  const originId = async (origin: TestOrigin, name: string) => {
    const created = await cp.request('POST', '/api/v1/origins', {
      body: { tenant_id: tenantId, name, url: origin.url },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const id = json(created)['id'] as string;
    originNames.set(id, name);
    return id;
  };
  const stableId = await originId(stable, 'stable');
  const canaryId = await originId(canary, 'canary');
  for (const [name, body] of Object.entries(routeBodies(stableId, canaryId))) {
    const created = await cp.request('POST', '/api/v1/routes', { body: { tenant_id: tenantId, ...body } });
    expect(created.status, `${name}: ${JSON.stringify(created.body)}`).toBe(201);
    routeIds.set(name, json(created)['id'] as string);
  }
  const issued = await cp.request('POST', '/api/v1/api-keys', {
    body: { tenant_id: tenantId, name: 'diff' },
  });
  apiKey = json(issued)['key'] as string;
  await cp.readModelsCaughtUp();
  gateway = await startTestGateway({ GATEWAY_AUTH_FAILURES_PER_MINUTE: '0' });
  const snapshot = replicaSnapshot(await cp.allEvents(), tenantId, (_event, message) => {
    throw new Error(`the snapshot projector refuses an event: ${message}`);
  });
  gateway.store.apply(snapshot);
}, 120_000);

afterAll(async () => {
  await gateway?.close();
  await Promise.all([stable?.close(), canary?.close()]);
  await cp?.close();
});

// ---- the requests ----

/** Header lines a case may send, by a name for reports; `KEY` stands for the tenant's API key. */
const HEADER_GROUPS: Record<string, ReadonlyArray<readonly [string, string]>> = {
  version: [['x-version', '2']],
  'version-mixed-case': [['X-Version', '2']],
  'version-twice': [
    ['X-Version', '2'],
    ['x-version', '2'],
  ],
  'version-empty': [['x-version', '']],
  canary: [['x-canary', 'yes']],
  'canary-twice': [
    ['x-canary', 'yes'],
    ['X-Canary', 'yes'],
  ],
  'canary-empty-then-yes': [
    ['x-canary', ''],
    ['x-canary', 'yes'],
  ],
  'cookie-canary': [['cookie', 'canary=on']],
  'cookie-canary-repeated': [['Cookie', 'canary=off; canary=on']],
  'cookie-canary-lines': [
    ['cookie', 'canary=on'],
    ['cookie', 'canary=off'],
  ],
  'cookie-canary-spaced': [['cookie', '  canary=on ;session=s1']],
  'cookie-empty': [['cookie', '']],
  'cookie-beta': [['cookie', 'beta=1; canary=on']],
  'cookie-beta-second-line': [
    ['cookie', 'session=s1'],
    ['cookie', 'beta=1'],
  ],
  'cookie-session-empty': [['cookie', 'session=; session=s2']],
  key: [['x-api-key', 'KEY']],
  'key-bearer': [['Authorization', 'Bearer KEY']],
  'key-twice': [
    ['x-api-key', 'KEY'],
    ['X-Api-Key', 'KEY'],
  ],
  'key-wrong': [['x-api-key', 've_live_not_a_key_of_anyone_0000000000']],
  'key-empty': [['x-api-key', '']],
  preflight: [
    ['Origin', 'https://app.example'],
    ['Access-Control-Request-Method', 'PUT'],
  ],
  'preflight-lower-method': [
    ['origin', 'https://app.example'],
    ['access-control-request-method', 'put'],
  ],
  'preflight-headers': [
    ['origin', 'https://app.example'],
    ['access-control-request-method', 'GET'],
    ['access-control-request-headers', 'X-Token'],
  ],
  'preflight-other-origin': [
    ['origin', 'https://evil.example'],
    ['access-control-request-method', 'GET'],
  ],
  'preflight-empty-method': [
    ['origin', 'https://app.example'],
    ['access-control-request-method', ''],
  ],
  'preflight-method-twice': [
    ['origin', 'https://app.example'],
    ['access-control-request-method', 'GET'],
    ['access-control-request-method', 'PUT'],
  ],
  'origin-only': [['origin', 'https://app.example']],
  'constructor-header': [['constructor', '1']],
  'constructor-empty': [['Constructor', '']],
  'proto-names': [
    ['__proto__', 'x'],
    ['toString', 'y'],
  ],
  'user-agent-lines': [
    ['user-agent', 'a'],
    ['User-Agent', 'b'],
  ],
};

const WORDS = ['a', 'items', 'x1', 'Items', 'v2', 'api', 'new'];
const ODD_SEGMENTS = [
  '.',
  '..',
  '%2e',
  '%2E%2e',
  '%2F',
  '%2f',
  'a;b=c',
  ';',
  '',
  '%41',
  '%7e',
  'x%20y',
  '%25',
];
const BASES = [
  '/api',
  '/api/items',
  '/API',
  '/Api/items',
  '/split',
  '/old',
  '/fixed',
  '/Fixed',
  '/keyed',
  '/cors',
  '/office',
  '/cached',
  '/cookie',
  '/host',
  '/vhost',
  '/proto',
  '/reports',
  '/elsewhere',
  '',
];

/** Mostly `usual`; one case in `1 + weight` something else. */
function mostly<T>(usual: T, others: readonly T[], weight = 3): fc.Arbitrary<T> {
  return fc.oneof(
    { weight, arbitrary: fc.constant(usual) },
    { weight: 1, arbitrary: fc.constantFrom(...others) },
  );
}

const requestPath = fc
  .tuple(
    fc.constantFrom(...BASES),
    fc.array(
      fc.tuple(
        mostly('/', ['//', '/./', '/../']),
        fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...WORDS) }, fc.constantFrom(...ODD_SEGMENTS)),
      ),
      { maxLength: 3 },
    ),
    mostly('', ['/', ';x=1', '/.', '%2F']),
  )
  .map(([base, rest, tail]) => {
    const path = base + rest.map(([join, segment]) => join + segment).join('') + tail;
    return path.startsWith('/') ? path : `/${path}`;
  });

const explainedRequest: fc.Arbitrary<ExplainedRequest> = fc.record({
  method: mostly('GET', ['HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'OPTIONS', 'get', 'Put', 'FOO'], 4),
  host: mostly(HOST, [
    'EXD.localhost',
    'exd.localhost.',
    `${HOST}:8080`,
    'Exd.Localhost.:80',
    'other.localhost',
  ]),
  path: requestPath,
  query: mostly('', [
    '?beta',
    '?beta=',
    '?beta=1&beta=2',
    '?Beta=1',
    '?b%65ta=1',
    '?x=1&beta',
    '?=1',
    '?&&',
    '?q=%20a',
    '?format=html&format=pdf',
    '?format=pdf;format=html',
    '?format=html&format=pdf;format=html',
    '?x=1;format=pdf&format=html',
  ]),
  lines: fc
    .uniqueArray(fc.constantFrom(...Object.keys(HEADER_GROUPS)), { maxLength: 3 })
    .map((groups) => groups.flatMap((group) => HEADER_GROUPS[group]!)),
});

const withKey = (value: string) => value.replace('KEY', apiKey);

// ---- the comparison ----

interface Explanation {
  decision: { stage: string; status: number | null; code: string | null };
  route: { id: string } | null;
  upstream: { origin_id: string | null; forwarded_path: string; host_header?: string | null } | null;
  policies: {
    redirect: { location: string } | null;
    traffic_split: { chosen_by: string } | null;
  } | null;
}

/** What the gateway did with a request: its answer, and what an origin received. */
interface GatewayOutcome {
  response: RawResponse | undefined;
  forwarded: { origin: string; url: string; host: string; routeId: string } | undefined;
}

let nextCase = 0;

async function throughGateway(request: ExplainedRequest): Promise<GatewayOutcome> {
  const id = `explain-diff-${nextCase++}`;
  const before = [stable.seen.length, canary.seen.length];
  const exchange = await rawExchange(
    gateway.gateway.trafficPort,
    requestBytes(request, id, withKey),
    [request.method],
    DEADLINE_MS,
  );
  const received = [
    ...stable.seen.slice(before[0]).map((seen) => ({ origin: 'stable', ...seen })),
    ...canary.seen.slice(before[1]).map((seen) => ({ origin: 'canary', ...seen })),
  ].find((seen) => seen.headers['x-request-id'] === id);
  return {
    response: exchange.responses[0],
    forwarded:
      received === undefined
        ? undefined
        : {
            origin: received.origin,
            url: received.url,
            host: String(received.headers.host),
            routeId: String(received.headers['x-vantageedge-route-id']),
          },
  };
}

async function throughExplain(request: ExplainedRequest): Promise<Explanation | string> {
  const answer = await cp.request('POST', `/api/v1/tenants/${tenantId}/explain`, {
    body: explainBody(request, withKey),
  });
  if (answer.status !== 200) return `explain answered ${answer.status}: ${JSON.stringify(answer.body)}`;
  return answer.body as Explanation;
}

const routeName = (id: string | undefined) =>
  [...routeIds].find(([, routeId]) => routeId === id)?.[0] ?? id ?? 'none';

/** The origin explain says the request goes to: a split override's, else the route's own. */
function explainedOrigin(explanation: Explanation): string | undefined {
  const chosenBy = explanation.policies?.traffic_split?.chosen_by ?? '';
  const override = /^an override: .* → origin (\S+)$/.exec(chosenBy)?.[1];
  const id = override ?? explanation.upstream?.origin_id ?? undefined;
  return id === undefined ? undefined : originNames.get(id);
}

/** How explain and the gateway disagree about a request (none: an empty list). */
async function disagreements(request: ExplainedRequest): Promise<string[]> {
  const explanation = await throughExplain(request);
  const outcome = await throughGateway(request);
  if (typeof explanation === 'string') return [explanation];
  const { response, forwarded } = outcome;
  if (response === undefined) return ['the gateway gave no answer'];
  const { decision } = explanation;
  const explained = `explain: ${decision.stage} ${decision.status ?? 'forwarded'} ${decision.code ?? ''} route ${routeName(explanation.route?.id)}`;
  const served = `gateway: ${response.status} ${errorCodeOf(response) ?? ''} route ${routeName(forwarded?.routeId)}`;
  if (!METHODS.includes(request.method)) {
    // node's HTTP/1.1 parser refuses a method it does not know (any with a lower-case letter) before
    // the gateway reads the Host; over HTTP/2 the gateway's own check refuses it after the host lookup.
    const refused = decision.stage === 'host' || (decision.stage === 'method' && decision.status === 400);
    const malformed = response.status === 400 && errorCodeOf(response) === 'malformed_request';
    return refused && malformed ? [] : [`${explained}; ${served}`];
  }
  if (decision.status === null) {
    if (forwarded === undefined) return [`${explained}; ${served}`];
    const problems: string[] = [];
    if (forwarded.routeId !== explanation.route?.id) problems.push(`${explained}; ${served}`);
    const origin = explainedOrigin(explanation);
    if (forwarded.origin !== origin)
      problems.push(`explain: origin ${origin}; gateway: origin ${forwarded.origin}`);
    const path = explanation.upstream?.forwarded_path;
    if (forwarded.url !== path)
      problems.push(`explain: the origin gets ${path}; gateway: it got ${forwarded.url}`);
    const target = new URL((forwarded.origin === 'stable' ? stable : canary).url).host;
    const host = explanation.upstream?.host_header ?? target;
    if (forwarded.host !== host)
      problems.push(`explain: the origin gets Host ${host}; gateway: ${forwarded.host}`);
    return problems;
  }
  if (forwarded !== undefined || response.status !== decision.status) return [`${explained}; ${served}`];
  if (response.status >= 400 && request.method !== 'HEAD' && errorCodeOf(response) !== decision.code) {
    return [`${explained}; ${served}`];
  }
  if (decision.stage === 'redirect') {
    const location = response.headers.get('location')?.[0];
    const explainedLocation = explanation.policies?.redirect?.location;
    if (location !== explainedLocation)
      return [`explain: Location ${explainedLocation}; gateway: ${location}`];
  }
  return [];
}

const label = (request: ExplainedRequest) => JSON.stringify(request).replace(apiKey, 'KEY');

describe('explain against a gateway serving the same config', () => {
  it('describes what the gateway does with every generated request', async () => {
    const cases = fc.sample(explainedRequest, { seed: SEED, numRuns: CASES });
    const found = new Map<string, string>();
    for (const request of cases) {
      for (const problem of await disagreements(request)) {
        const kind = problem.replace(/[0-9a-f-]{36}/g, '<id>').slice(0, 100);
        if (!found.has(kind)) found.set(kind, `${problem}\n    case ${label(request)}`);
      }
    }
    expect([...found.values()]).toEqual([]);
  }, 120_000);
});

/** Disagreements the differential found, each as its smallest request. */
const COUNTEREXAMPLES: Record<string, ExplainedRequest> = {
  'a header condition that holds chooses its route': {
    method: 'GET',
    host: HOST,
    path: '/api/a',
    query: '',
    lines: [['X-Version', '2']],
  },
  'a query condition that holds chooses its route, of a higher priority, and its rewrite': {
    method: 'GET',
    host: HOST,
    path: '/api/items',
    query: '?beta',
    lines: [],
  },
  'a host condition holds on the host with its port and trailing dot': {
    method: 'GET',
    host: 'EXD.localhost.:80',
    path: '/host/a',
    query: '',
    lines: [],
  },
  'preserve_host sends the host the tenant was resolved from': {
    method: 'GET',
    host: 'Exd.Localhost.:80',
    path: '/vhost/a',
    query: '',
    lines: [],
  },
  'a Cookie condition reads the Cookie lines joined': {
    method: 'GET',
    host: HOST,
    path: '/cookie/a',
    query: '',
    lines: [
      ['cookie', 'beta=1'],
      ['cookie', 'session=s1'],
    ],
  },
  'a split reads no cookie the route keeps from its origins': {
    method: 'GET',
    host: HOST,
    path: '/cookieless/a',
    query: '',
    lines: [['cookie', 'canary=on']],
  },
  'a split reads the header the route sets': {
    method: 'GET',
    host: HOST,
    path: '/forced/a',
    query: '',
    lines: [],
  },
  'a split reads the line the route adds of a header dropped from clients, not the client’s': {
    method: 'GET',
    host: HOST,
    path: '/partner/a',
    query: '',
    lines: [['X-Api-Key', 'mine']],
  },
  'a method with lower-case letters is refused': {
    method: 'get',
    host: HOST,
    path: '/a',
    query: '',
    lines: [],
  },
  'a method the gateways do not know is refused': {
    method: 'FOO',
    host: HOST,
    path: '/a',
    query: '',
    lines: [],
  },
  'a preflight with an empty Access-Control-Request-Method is no preflight': {
    method: 'OPTIONS',
    host: HOST,
    path: '/cors/a',
    query: '',
    lines: [
      ['origin', 'https://app.example'],
      ['access-control-request-method', ''],
    ],
  },
};

describe('explain against a gateway: the counterexamples found', () => {
  it.each(Object.entries(COUNTEREXAMPLES))('%s', async (_name, request) => {
    expect(await disagreements(request)).toEqual([]);
  });

  // Go before 1.17 reads `format=pdf` first (pairs split at `;`), the route of `format=html` is public.
  it.each(['?format=pdf;format=html', '?x=1;format=pdf&format=html'])(
    'refuses %s, which an origin splitting pairs at `;` reads as a keyed route’s, on both',
    async (query) => {
      const request: ExplainedRequest = { method: 'GET', host: HOST, path: '/reports/q3', query, lines: [] };
      const explanation = await throughExplain(request);
      const { response, forwarded } = await throughGateway(request);
      expect(forwarded).toBeUndefined();
      expect([response?.status, response && errorCodeOf(response)]).toEqual([403, 'ambiguous_query']);
      expect(typeof explanation === 'string' ? explanation : explanation.decision).toMatchObject({
        status: 403,
        code: 'ambiguous_query',
      });
    },
  );
});
