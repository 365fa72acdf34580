import { randomUUID } from 'node:crypto';
import { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { Authenticator } from '@vantageedge/gateway/auth/authenticator';
import { GatewayConfigStore } from '@vantageedge/gateway/config/gateway-config-store';
import { GatewayServerResponse } from '@vantageedge/gateway/http/gateway-server-response';
import { createGatewayHandler } from '@vantageedge/gateway/pipeline/gateway-handler';
import { buildSnapshot, type TestRoute } from '@vantageedge/gateway/testing/snapshots';

/**
 * `make bench-config-cpu`: what one tenant's route config makes each of its requests cost a replica's
 * event loop (docs/capacity.md, "What a tenant's configuration costs per request"). Each scenario is a
 * feature at the largest config the control plane accepts, or at its smallest, and the costliest request
 * a client can send against it, through the gateway's handler in one process (no origin: a proxied
 * route answers 503, a route answering itself answers); CPU µs per request. Compare a feature's two
 * sizes run in the same process: the machine's load moves both. BENCH_ONLY=name,name runs those.
 */
const ITERATIONS = Number(process.env['BENCH_ITERATIONS'] ?? 3000);

/** The answer's first line, from a socket that discards what the gateway writes. */
let statusLine = '';
const discardingSocket = () =>
  new Duplex({
    write(chunk: Buffer, _encoding, callback) {
      if (chunk.subarray(0, 5).toString('latin1') === 'HTTP/') statusLine = firstLine(chunk);
      callback();
    },
    writev(chunks, callback) {
      const head = Buffer.from(chunks[0]!.chunk as Buffer);
      if (head.subarray(0, 5).toString('latin1') === 'HTTP/') statusLine = firstLine(head);
      callback();
    },
    read() {},
  }) as unknown as Socket;
const firstLine = (chunk: Buffer) => chunk.subarray(0, chunk.indexOf('\r\n')).toString('latin1');

interface Scenario {
  /** Origins ORIGIN0…ORIGIN<n-1>, named so in routes. */
  readonly origins?: number;
  readonly routes: TestRoute[];
  readonly method?: string;
  readonly url: string;
  readonly headers: Record<string, string>;
}

async function cpuPerRequest(scenario: Scenario): Promise<{ us: number; status: string }> {
  const store = new GatewayConfigStore({
    baseDomains: ['localhost'],
    createUpstreamSet: () => ({ acquire: () => undefined, close: async () => {} }),
  });
  const handler = createGatewayHandler({
    store,
    authenticator: new Authenticator({ apiKeyPepper: 'bench-pepper-0123456789abcdef0123456789' }),
    maxBodyBytes: 1 << 20,
  });
  const origins = Array.from({ length: scenario.origins ?? 1 }, () => ({
    id: randomUUID(),
    targets: ['http://127.0.0.1:9'],
  }));
  const routes = JSON.parse(
    JSON.stringify(scenario.routes).replace(/"ORIGIN(\d+)"/g, (_, n) =>
      JSON.stringify(origins[Number(n)]!.id),
    ),
  ) as TestRoute[];
  store.apply(buildSnapshot({ subdomain: 'bench', origins, routes }));
  const request = () => {
    const socket = discardingSocket();
    const req = new IncomingMessage(socket);
    req.method = scenario.method ?? 'GET';
    req.url = scenario.url;
    req.httpVersionMajor = 1;
    req.httpVersionMinor = 1;
    req.httpVersion = '1.1';
    req.headers = { host: 'bench.localhost', ...scenario.headers };
    req.rawHeaders = Object.entries(req.headers).flatMap(([name, value]) => [name, String(value)]);
    const res = new GatewayServerResponse(req);
    res.assignSocket(socket);
    handler(req, res);
  };
  const turn = () => new Promise<void>((resolve) => setImmediate(resolve));
  for (let i = 0; i < 200; i++) request(); // warm-up (JIT)
  await turn();
  const before = process.cpuUsage();
  for (let i = 0; i < ITERATIONS; i++) {
    request();
    // Responses are held until the end of their turn (GatewayServerResponse): released here.
    if (i % 50 === 49) await turn();
  }
  const cpu = process.cpuUsage(before);
  await turn();
  return { us: (cpu.user + cpu.system) / ITERATIONS, status: statusLine };
}

const text = (length: number, character = 'a') => character.repeat(length);
const named = (count: number, prefix: string, value: (i: number) => string) =>
  Object.fromEntries(Array.from({ length: count }, (_, i) => [`${prefix}${i}`, value(i)]));
const cookieOfPairs = Array.from({ length: 3000 }, (_, i) => `c${i}=v`).join('; ');
const queryOfPairs = `?${Array.from({ length: 850 }, (_, i) => `p${i}=v${i}`).join('&')}`;
const manyHeaders = named(90, 'x-h-', () => text(150));
const splitOrigins = (count: number) =>
  Array.from({ length: count }, (_, i) => ({ origin_id: `ORIGIN${i}`, weight: 1000 }));
const proxied = (policies: Partial<TestRoute>): TestRoute[] => [
  { origin_id: 'ORIGIN0', path_pattern: '/api/*', ...policies },
];
const answering = (policies: Partial<TestRoute>): TestRoute[] => [
  { origin_id: null, path_pattern: '/api/*', ...policies },
];
const nestedWildcards = Array.from({ length: 50 }, (_, i) => `https://*.${'a.'.repeat(50 - i)}com`);

const SCENARIOS: Record<string, Scenario> = {
  plain: { routes: proxied({}), url: '/api/x', headers: {} },
  split_cookie_keys_min: {
    origins: 2,
    routes: proxied({
      traffic_split: {
        origins: splitOrigins(2),
        overrides: [{ cookie: 'zz0', value: 'x', origin_id: 'ORIGIN1' }],
      },
    }),
    url: '/api/x',
    headers: { cookie: cookieOfPairs },
  },
  split_cookie_keys_max: {
    origins: 10,
    routes: proxied({
      traffic_split: {
        origins: splitOrigins(10),
        sticky: { cookie: 'zzsticky' },
        overrides: Array.from({ length: 10 }, (_, i) => ({
          cookie: `zz${i}`,
          value: 'x',
          origin_id: `ORIGIN${i}`,
        })),
      },
    }),
    url: '/api/x',
    headers: { cookie: cookieOfPairs },
  },
  split_sticky_min: {
    origins: 2,
    routes: proxied({ traffic_split: { origins: splitOrigins(2), sticky: { header: 'x-session' } } }),
    url: '/api/x',
    headers: { 'x-session': text(16_000) },
  },
  split_sticky_max: {
    origins: 10,
    routes: proxied({ traffic_split: { origins: splitOrigins(10), sticky: { header: 'x-session' } } }),
    url: '/api/x',
    headers: { 'x-session': text(16_000) },
  },
  query_none: { routes: proxied({}), url: `/api/x${queryOfPairs}`, headers: {} },
  query_transform_min: {
    routes: proxied({ query: { remove: ['r'] } }),
    url: `/api/x${queryOfPairs}`,
    headers: {},
  },
  query_transform_max: {
    routes: proxied({
      query: {
        set: named(30, 's', () => text(500, 'é')),
        add: named(30, 'a', () => text(500, 'é')),
        remove: Array.from({ length: 30 }, (_, i) => `r${i}[x]`),
      },
    }),
    url: `/api/x${queryOfPairs}`,
    headers: {},
  },
  request_headers_none: { routes: proxied({}), url: '/api/x', headers: manyHeaders },
  request_headers_max: {
    routes: proxied({
      request_headers: {
        set: named(30, 'x-s', () => `${text(480)}\${client_ip}`),
        add: named(30, 'x-a', () => `${text(480)}\${request_id}`),
        remove: Array.from({ length: 30 }, (_, i) => `x_r_${i}`),
      },
    }),
    url: '/api/x',
    headers: manyHeaders,
  },
  cors_preflight_min: {
    method: 'OPTIONS',
    routes: proxied({ cors: { allow_origins: ['https://app.example.com'] } }),
    url: '/api/x',
    headers: { origin: 'https://app.example.com', 'access-control-request-method': 'GET' },
  },
  cors_preflight_max: {
    method: 'OPTIONS',
    routes: proxied({
      cors: {
        allow_origins: nestedWildcards,
        allow_headers: Array.from({ length: 50 }, (_, i) => `x-h${i}`),
      },
    }),
    url: '/api/x',
    headers: {
      origin: `https://${'a-'.repeat(45)}b.${'a.'.repeat(50)}com`,
      'access-control-request-method': 'GET',
      'access-control-request-headers': Array.from({ length: 50 }, (_, i) => `x-h${i}`).join(','),
    },
  },
  ip_rules_max: {
    routes: proxied({
      ip_rules: {
        allow: Array.from({ length: 200 }, (_, i) => `2001:db8:${i.toString(16)}::/48`),
        deny: Array.from({ length: 200 }, (_, i) => `10.${i}.0.0/16`),
      },
    }),
    url: '/api/x',
    headers: {},
  },
  redirect_min: {
    routes: answering({ redirect: { location: 'https://x.example/' } }),
    url: `/api/${text(600, 'é')}${queryOfPairs.slice(0, 300)}`,
    headers: {},
  },
  redirect_max: {
    routes: answering({
      redirect: { location: `https://x.example${`\${path}\${query}`.repeat(3)}\${host}\${path}` },
    }),
    url: `/api/${text(600, 'é')}${queryOfPairs.slice(0, 300)}`,
    headers: {},
  },
  fixed_response_min: {
    routes: answering({ fixed_response: { status: 200, body: 'ok' } }),
    url: '/api/x',
    headers: {},
  },
  fixed_response_max: {
    routes: answering({
      fixed_response: { status: 200, body: text(65_536), headers: named(30, 'x-f', () => text(1000)) },
    }),
    url: '/api/x',
    headers: {},
  },
  match_conditions_max: {
    routes: Array.from({ length: 500 }, (_, i) => ({
      origin_id: 'ORIGIN0',
      path_pattern: '/api/*',
      match: { headers: [{ name: `x-h${i % 10}`, exact: `${text(399, 'v')}${i}` }] },
    })),
    url: '/api/x',
    headers: named(10, 'x-h', () => text(400, 'v')),
  },
};

const only = process.env['BENCH_ONLY']?.split(',');
for (const [name, scenario] of Object.entries(SCENARIOS)) {
  if (only !== undefined && !only.includes(name)) continue;
  const { us, status } = await cpuPerRequest(scenario);
  console.log(`${name.padEnd(24)} ${us.toFixed(1).padStart(8)} µs  ${status}`);
}
