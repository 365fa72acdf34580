import type { IncomingHttpHeaders } from 'node:http';
import { IncomingMessage } from 'node:http';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import path from 'node:path';
import { Duplex } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { BENCH_API_KEY, BENCH_BROWSER_ORIGIN, BENCH_ROUTE_POLICIES, tenantFor } from './lib/scenarios.js';

/**
 * `make bench-policies-micro`: the route policies' per-request cost in one process, without sockets or
 * the kernel. Scenario 2's and scenario 9's request (bench/lib/scenarios.ts) through the gateway's own
 * work, interleaved, CPU ns per request (median of BENCH_MICRO_ROUNDS rounds of BENCH_MICRO_MS each):
 * the client's head as node's parser hands it over, the route's compiled request stages (IP rules, CORS,
 * the request transform; authentication is the same on both sides and left out), the origin's request
 * headers, undici's request object (its check of every header) and the head undici writes from it, the
 * origin's response headers, the route's response hooks, and the gateway's HTTP/1.1 response (head and
 * body) into a socket that discards them.
 *
 * BENCH_GATEWAY_SRC=<a copy of services/gateway/src> measures that copy instead (before and after a
 * change: run each a few times, alternating; two copies loaded into one process bias each other's
 * figures by more than such a change moves them). BENCH_CUT=1|2|3 stops each
 * request after its request stages, its origin request, its response hooks. BENCH_SHOW=1 prints one
 * request of each side.
 */
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ROUNDS = Number(process.env['BENCH_MICRO_ROUNDS'] ?? 41);
const ROUND_MS = Number(process.env['BENCH_MICRO_MS'] ?? 100);
const CUT = Number(process.env['BENCH_CUT'] ?? 0);

// undici's request object: how its dispatcher checks and keeps the headers it is given (no public API).
const UndiciRequest = createRequire(import.meta.url)('undici/lib/core/request.js') as new (
  origin: string,
  options: Record<string, unknown>,
  handler: object,
) => { headers: string[] };
const undiciHandler = { onRequestStart() {} };

/** What the last response wrote to its socket (BENCH_SHOW). */
let written = '';
let sink: unknown;

const discardingSocket = () =>
  new Duplex({
    write(chunk: Buffer, _encoding, callback) {
      written = chunk.toString('latin1');
      callback();
    },
    writev(chunks, callback) {
      written = chunks.map(({ chunk }) => String(chunk)).join('');
      callback();
    },
    read() {},
  }) as unknown as Socket;

const originUrl = 'http://127.0.0.1:8081';
const body = Buffer.from('{"id":1,"title":"hello"}');
const identity = { kind: 'api_key', apiKeyId: 'key_bench', scopes: [] };

// biome-ignore lint/suspicious/noExplicitAny: modules loaded from a directory chosen at run time
type AnyModule = any;

/** Scenario 2's and 9's request through the gateway modules under `src` (a services/gateway/src). */
async function scenarios(src: string): Promise<{ apikey: () => void; policies: () => void }> {
  const load = (file: string): Promise<AnyModule> => import(pathToFileURL(path.join(src, file)).href);
  const [config, cors, response, ipRules, exchangeModule, originRequest, forwarded, transforms] =
    await Promise.all([
      load('config/gateway-config-store.ts'),
      load('cors/cors-stage.ts'),
      load('http/gateway-server-response.ts'),
      load('ip-rules/ip-rules-stage.ts'),
      load('pipeline/exchange.ts'),
      load('pipeline/origin-request.ts'),
      load('proxy/forwarded-headers.ts'),
      load('transforms/transform-stages.ts'),
    ]);
  const store = new config.GatewayConfigStore({
    baseDomains: ['localhost'],
    createUpstreamSet: () => ({ acquire: () => undefined, close: async () => {} }),
  });
  // The policies of the pipeline that these two routes use, in the pipeline's order (gateway-handler.ts).
  store.setPipeline({
    policies: [
      ipRules.createIpRulesPolicy(),
      cors.createCorsPolicy(),
      transforms.createRequestTransformPolicy(),
      transforms.createPerRequestResponseHeadersPolicy(),
      cors.createCorsVaryPolicy(),
      transforms.createResponseHeadersPolicy(),
      cors.createCorsOriginHeadersPolicy(),
    ],
  });
  store.apply(tenantFor(0, originUrl, [{ path_pattern: '/api/*', auth_mode: 'apikey_required' }]));
  store.apply(
    tenantFor(1, originUrl, [
      { path_pattern: '/api/*', auth_mode: 'apikey_required', ...BENCH_ROUTE_POLICIES },
    ]),
  );
  const lease = { target: { url: new URL(originUrl) } };

  const requestTo = (host: string, clientHeaders: () => IncomingHttpHeaders) => {
    const tenant = store.resolveHost(host);
    const route = tenant.router.match('GET', '/api/posts/1');
    return () => {
      const socket = discardingSocket();
      const req = new IncomingMessage(socket);
      req.method = 'GET';
      req.url = '/api/posts/1';
      req.httpVersionMajor = 1;
      req.httpVersionMinor = 1;
      req.headers = clientHeaders();
      const res = new response.GatewayServerResponse(req);
      res.assignSocket(socket);
      const requestId = crypto.randomUUID();
      // As the pipeline sets it, before any stage (gateway-handler.ts handleRequest).
      res.setHeader('x-request-id', requestId);
      const exchange = new exchangeModule.GatewayExchange(req, res, requestId, '127.0.0.1');
      exchange.tenant = tenant;
      exchange.route = route;
      exchange.path = '/api/posts/1';
      exchange.identity = identity;
      exchange.peerIp = '127.0.0.1';
      for (const stage of route.stages.request) stage.onRequest(exchange);
      if (CUT === 1) return;
      const headers = originRequest.originRequestHeaders(exchange, lease, false);
      const request = new UndiciRequest(
        originUrl,
        { path: '/api/posts/1', method: 'GET', headers, body: null, headersTimeout: 1, bodyTimeout: 1 },
        undiciHandler,
      );
      // As undici's HTTP/1.1 writer makes the head from the headers it kept.
      let head = 'GET /api/posts/1 HTTP/1.1\r\nconnection: keep-alive\r\n';
      const lines = request.headers;
      for (let n = 0; n < lines.length; n += 2) head += `${lines[n]}: ${lines[n + 1]}\r\n`;
      sink = head;
      if (CUT === 2) return;
      // The origin's answer as undici hands its headers over.
      const originHeaders = {
        'content-type': 'application/json',
        'content-length': String(body.length),
        date: 'Sat, 05 Dec 2026 12:00:00 GMT',
        'keep-alive': 'timeout=5',
      };
      const outHeaders = forwarded.downstreamResponseHeaders(originHeaders, res.getHeaderNames());
      outHeaders['x-request-id'] = exchange.requestId;
      const responseHead: { statusCode: number; headers: unknown; checkedHeaders?: unknown } = {
        statusCode: 200,
        headers: outHeaders,
        checkedHeaders: undefined,
      };
      for (const stage of route.stages.response) stage.onResponse(exchange, responseHead);
      if (CUT === 3) return;
      response.writeLowerCaseHead(res, 200, responseHead.headers, ...checkedOf(responseHead));
      res.write(body);
      res.end();
    };
  };
  return {
    apikey: requestTo('t0.localhost', () => ({ host: 't0.localhost', 'x-api-key': BENCH_API_KEY })),
    policies: requestTo('t1.localhost', () => ({
      host: 't1.localhost',
      'x-api-key': BENCH_API_KEY,
      origin: BENCH_BROWSER_ORIGIN,
    })),
  };
}

/** The head's prepared headers, where the tree under test has them (ClientResponseWriter's argument). */
const checkedOf = (head: { checkedHeaders?: unknown }): unknown[] =>
  head.checkedHeaders === undefined ? [] : [head.checkedHeaders];

/** CPU ns per request over one round (all threads of the process: the GC's helpers too). */
async function round(fn: () => void): Promise<number> {
  let ops = 0;
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  while (performance.now() - started < ROUND_MS) {
    for (let i = 0; i < 50; i++) fn();
    ops += 50;
    // Responses are held until the end of their turn (GatewayServerResponse): released here.
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  const cpu = process.cpuUsage(cpuBefore);
  return ((cpu.user + cpu.system) * 1000) / ops;
}

const median = (values: readonly number[]) => [...values].sort((a, b) => a - b)[values.length >> 1]!;

const src = path.resolve(process.env['BENCH_GATEWAY_SRC'] ?? path.join(repo, 'services/gateway/src'));
const sides = [{ name: 'gateway', ...(await scenarios(src)) }];

if (process.env['BENCH_SHOW'] === '1') {
  for (const side of sides) {
    for (const fn of [side.apikey, side.policies]) {
      fn();
      await new Promise<void>((resolve) => setImmediate(resolve));
      console.log(`--- ${side.name}\n${sink as string}\n${written}\n`);
    }
  }
}

const runners = sides.flatMap((side) => [
  { name: `${side.name}: apikey`, fn: side.apikey },
  { name: `${side.name}: policies`, fn: side.policies },
]);
for (const runner of runners) await round(runner.fn); // warm-up (JIT)
const samples = runners.map(() => [] as number[]);
for (let i = 0; i < ROUNDS; i++) {
  // Each round in another order, so that no runner always follows the same one.
  const order = runners.map((_, k) => (k + i) % runners.length);
  if (i % 2 === 1) order.reverse();
  for (const k of order) samples[k]!.push(await round(runners[k]!.fn));
}
const result: Record<string, unknown> = {};
for (const [s, side] of sides.entries()) {
  const apikey = samples[2 * s]!;
  const policies = samples[2 * s + 1]!;
  const extra = policies.map((value, i) => value - apikey[i]!);
  const sorted = [...extra].sort((a, b) => a - b);
  result[side.name] = {
    apikey_ns: Math.round(median(apikey)),
    policies_ns: Math.round(median(policies)),
    extra_ns: Math.round(median(extra)),
    extra_quartiles_ns: [
      Math.round(sorted[Math.floor(sorted.length / 4)]!),
      Math.round(sorted[Math.floor((3 * sorted.length) / 4)]!),
    ],
  };
}
console.log(JSON.stringify({ src: path.relative(repo, src), ...result }));
