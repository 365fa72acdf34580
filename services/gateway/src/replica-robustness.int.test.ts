import net from 'node:net';
import { Writable } from 'node:stream';
import { hashApiKey } from '@vantageedge/shared/domain/api-key-hash';
import { ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK } from '@vantageedge/shared/net/origin-address-policy';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { parseSettings } from '@vantageedge/shared/settings/load-settings';
import { createInMemorySnapshotBus } from '@vantageedge/shared/snapshot-bus/in-memory-snapshot-bus';
import { configPlaneSettings } from '@vantageedge/shared/snapshot-bus/settings';
import { createTestRedis, type TestRedis } from '@vantageedge/shared/testing/redis';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { streamSink } from './observability/batched-line-writer.js';
import { gatewaySettings } from './settings.js';
import { type GatewayReplica, startGatewayReplica } from './start-gateway-replica.js';
import { buildSnapshot } from './testing/snapshots.js';

/**
 * Standing check: one replica serves every tenant, so no input may crash or wedge it. A real replica
 * (startGatewayReplica: auth, rate limit and cache stages on real Redis, metrics, access log) in front
 * of a raw-TCP origin that answers whatever fast-check makes up — repeated headers in any case, odd
 * values, invalid status lines, wrong framing, early closes — and raw-TCP clients that send arbitrary
 * methods, paths with odd bytes and headers. Every request must get a status line, the gateway must never
 * answer with its own internal_error, nothing may be left unhandled, and the replica must still serve
 * afterwards.
 *
 * Seeded (GATEWAY_PROPERTY_SEED overrides the fixed default); fast-check prints the seed and the
 * counterexample's path on failure, so `GATEWAY_PROPERTY_SEED=<seed>` replays it.
 */
const SEED = Number(process.env['GATEWAY_PROPERTY_SEED'] ?? 20261130);
const RUNS = Number(process.env['GATEWAY_PROPERTY_RUNS'] ?? 300);
const PEPPER = 'robustness-pepper-0123456789abcdef0123456789';
const API_KEY = 've_live_robustness_key_0000000000000000';
const HOST = 'robust.localhost';
const ANSWER_TIMEOUT_MS = 10_000;

// ---------------------------------------------------------------------------------------------------
// The origin: a raw TCP server that writes exactly the bytes a scenario asks for, then closes.

interface OriginScenario {
  statusLine: string;
  headers: Array<[string, string]>;
  body: Uint8Array;
  framing: 'content-length' | 'short-length' | 'long-length' | 'chunked' | 'close-delimited';
  cut: 'none' | 'immediately' | 'after-status' | 'after-headers' | 'mid-body';
}

const scenarios = new Map<string, OriginScenario>();
/** How many scenarios the origin was actually asked for (the property must reach it, not just 503s). */
let scenariosServed = 0;

function rawResponse(scenario: OriginScenario): Buffer[] {
  const body = Buffer.from(scenario.body);
  const lines = [scenario.statusLine, ...scenario.headers.map(([name, value]) => `${name}: ${value}`)];
  if (scenario.framing === 'content-length') lines.push(`Content-Length: ${body.length}`);
  if (scenario.framing === 'short-length') lines.push(`Content-Length: ${Math.max(0, body.length - 1)}`);
  if (scenario.framing === 'long-length') lines.push(`Content-Length: ${body.length + 10}`);
  if (scenario.framing === 'chunked') lines.push('Transfer-Encoding: chunked');
  const head = Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
  const framedBody =
    scenario.framing === 'chunked'
      ? Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from('\r\n0\r\n\r\n')])
      : body;
  const statusEnd = head.indexOf('\r\n') + 2;
  switch (scenario.cut) {
    case 'immediately':
      return [];
    case 'after-status':
      return [head.subarray(0, statusEnd)];
    case 'after-headers':
      return [head];
    case 'mid-body':
      return [head, framedBody.subarray(0, Math.floor(framedBody.length / 2))];
    case 'none':
      return [head, framedBody];
  }
}

async function startRawOrigin(): Promise<{ url: string; close(): Promise<void> }> {
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    let seen = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      seen = Buffer.concat([seen, chunk]);
      const end = seen.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      socket.resume();
      const head = seen.subarray(0, end).toString('latin1');
      const id = /\r\nx-scenario: *([^\r\n]*)/i.exec(head)?.[1]?.trim() ?? '';
      const scenario = scenarios.get(id);
      if (!scenario) {
        socket.end(
          'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\nConnection: close\r\n\r\nplain!',
        );
        return;
      }
      scenariosServed += 1;
      const parts = rawResponse(scenario);
      for (const part of parts) socket.write(part);
      if (scenario.cut === 'none') socket.end();
      else socket.destroy();
    };
    socket.on('data', onData);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

// ---------------------------------------------------------------------------------------------------
// The client: raw TCP, so methods, paths and header bytes reach the gateway exactly as generated.

interface ClientRequest {
  method: string;
  host: string;
  path: string;
  headers: Array<[string, string]>;
  body: string;
}

interface RawAnswer {
  statusLine: string;
  text: string;
}

function sendRaw(port: number, request: ClientRequest, scenarioId: string): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer within ${ANSWER_TIMEOUT_MS} ms`));
    }, ANSWER_TIMEOUT_MS);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('latin1');
      resolve({ statusLine: text.slice(0, Math.max(0, text.indexOf('\r\n'))), text });
    });
    const body = Buffer.from(request.body, 'utf8');
    const lines = [
      `${request.method} ${request.path} HTTP/1.1`,
      `Host: ${request.host}`,
      ...request.headers.map(([name, value]) => `${name}: ${value}`),
      `x-scenario: ${scenarioId}`,
      'Connection: close',
      ...(body.length > 0 ? [`Content-Length: ${body.length}`] : []),
    ];
    socket.write(Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), body]));
  });
}

// ---------------------------------------------------------------------------------------------------
// Arbitraries.

const printable = fc.string({
  unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
});
/** Mostly printable; sometimes a byte an HTTP parser must refuse (controls, DEL, high bytes). */
const oddText = fc.oneof(
  { weight: 6, arbitrary: printable },
  {
    weight: 1,
    arbitrary: fc.string({ unit: fc.integer({ min: 0, max: 0xff }).map((c) => String.fromCharCode(c)) }),
  },
  { weight: 1, arbitrary: printable.map((text) => text.repeat(40)) },
);

const caseVariant = (name: string) =>
  fc.constantFrom(
    name,
    name.toUpperCase(),
    name.replace(/(^|-)([a-z])/g, (m) => m.toUpperCase()),
  );

const originHeaderName = fc.oneof(
  ...[
    'cache-control',
    'vary',
    'set-cookie',
    'content-type',
    'connection',
    'keep-alive',
    'age',
    'expires',
    'etag',
    'pragma',
    'x-request-id',
    'ratelimit',
    'retry-after',
    'traceparent',
    'location',
    'www-authenticate',
    'content-length',
    'transfer-encoding',
    'trailer',
    'upgrade',
    'x-vantageedge-user-id',
  ].map(caseVariant),
  fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,20}$/),
);

const directive = fc.oneof(
  fc.constantFrom('no-store', 'no-cache', 'private', 'public', 'must-revalidate', '*', 'accept-encoding'),
  fc.integer({ min: -5, max: 10_000 }).map((n) => `max-age=${n}`),
  fc.constantFrom('max-age=99999999999999999999', 's-maxage=', 'max-age="60"', 'max-age=1.5', ','),
);
const originHeaderValue = fc.oneof(
  { weight: 3, arbitrary: fc.array(directive, { maxLength: 4 }).map((parts) => parts.join(', ')) },
  { weight: 3, arbitrary: oddText },
  { weight: 1, arbitrary: fc.constantFrom('', ' ', 'close', 'chunked', '0', '-1', 'x-hop, close') },
);

const statusLine = fc.oneof(
  {
    weight: 8,
    arbitrary: fc
      .tuple(
        fc.oneof(
          fc.constantFrom(200, 200, 201, 204, 301, 304, 404, 500, 502, 503),
          fc.integer({ min: 100, max: 599 }),
        ),
        printable,
      )
      .map(([status, reason]) => `HTTP/1.1 ${status} ${reason}`),
  },
  {
    weight: 2,
    arbitrary: fc.oneof(
      fc.constantFrom(
        'HTTP/1.1 200',
        'HTTP/1.0 200 OK',
        'HTTP/1.1 099 Too Low',
        'HTTP/1.1 600 Too High',
        'HTTP/1.1 999 Way Too High',
        'HTTP/1.1 1000 Four Digits',
        'HTTP/1.1 abc Not A Number',
        'HTTP/2 200 OK',
        'garbage',
        '',
      ),
      oddText.map((text) => `HTTP/1.1 ${text}`),
    ),
  },
);

const originScenario: fc.Arbitrary<OriginScenario> = fc.record({
  statusLine,
  headers: fc.array(fc.tuple(originHeaderName, originHeaderValue), { maxLength: 12 }),
  body: fc.oneof(
    { weight: 4, arbitrary: fc.uint8Array({ maxLength: 512 }) },
    {
      weight: 1,
      arbitrary: fc.integer({ min: 0, max: 256 * 1024 }).map((size) => new Uint8Array(size).fill(97)),
    },
  ),
  framing: fc.constantFrom(
    'content-length',
    'content-length',
    'short-length',
    'long-length',
    'chunked',
    'close-delimited',
  ),
  cut: fc.oneof(
    { weight: 6, arbitrary: fc.constant('none' as const) },
    { weight: 1, arbitrary: fc.constantFrom('immediately', 'after-status', 'after-headers', 'mid-body') },
  ),
});

const pathSegment = fc.oneof(
  { weight: 4, arbitrary: fc.stringMatching(/^[A-Za-z0-9._~-]{1,12}$/) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '..',
      '.',
      '%2F',
      '%2f',
      '%00',
      '%',
      '%ZZ',
      '%25',
      '',
      ';a=b',
      'é',
      '%C3%A9',
      '*',
      '@',
    ),
  },
  { weight: 1, arbitrary: oddText },
);
const clientPath = fc
  .oneof(
    {
      weight: 6,
      arbitrary: fc
        .tuple(
          fc.constantFrom('cached', 'open', 'keyed', 'jwt', 'limited'),
          fc.array(pathSegment, { maxLength: 4 }),
        )
        .map(([route, rest]) => `/${route}/${rest.join('/')}`),
    },
    { weight: 1, arbitrary: fc.array(pathSegment, { maxLength: 5 }).map((parts) => `/${parts.join('/')}`) },
    {
      weight: 1,
      arbitrary: fc.constantFrom('*', '', 'http://robust.localhost/open/x', '//open', '/open/x?a=1&a=2#f'),
    },
  )
  .chain((path) =>
    fc.oneof(
      { weight: 3, arbitrary: fc.constant(path) },
      { weight: 1, arbitrary: oddText.map((query) => `${path}?${query}`) },
    ),
  );

const clientHeaderName = fc.oneof(
  ...[
    'cache-control',
    'pragma',
    'cookie',
    'authorization',
    'x-api-key',
    'x-request-id',
    'x-forwarded-for',
    'forwarded',
    'accept',
    'accept-encoding',
    'if-none-match',
    'traceparent',
    'te',
    'expect',
    'upgrade',
    'x-vantageedge-user-id',
    'range',
  ].map(caseVariant),
  fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,20}$/),
);
const clientHeaderValue = fc.oneof(
  {
    weight: 2,
    arbitrary: fc.constantFrom(API_KEY, `Bearer ${API_KEY}`, 'Bearer a.b.c', 'no-cache', 'a=1; b=2'),
  },
  { weight: 3, arbitrary: oddText },
);

const clientRequest: fc.Arbitrary<ClientRequest> = fc.record({
  method: fc.oneof(
    {
      weight: 6,
      arbitrary: fc.constantFrom('GET', 'GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'),
    },
    { weight: 1, arbitrary: fc.constantFrom('TRACE', 'CONNECT', 'PROPFIND', 'get', 'G E T', '') },
    { weight: 1, arbitrary: fc.stringMatching(/^[A-Z]{1,12}$/) },
  ),
  host: fc.oneof({ weight: 8, arbitrary: fc.constant(HOST) }, { weight: 1, arbitrary: oddText }),
  path: clientPath,
  headers: fc
    .array(fc.tuple(clientHeaderName, clientHeaderValue), { maxLength: 8 })
    .map((headers) => headers.filter(([name]) => name.toLowerCase() !== 'x-scenario')),
  body: fc.oneof(
    { weight: 3, arbitrary: fc.constant('') },
    { weight: 1, arbitrary: fc.string({ maxLength: 300 }) },
  ),
});

// ---------------------------------------------------------------------------------------------------

let redis: TestRedis;
let origin: Awaited<ReturnType<typeof startRawOrigin>>;
let replica: GatewayReplica;
let port: number;
let accessLines = 0;
const escaped: unknown[] = [];
const onEscaped = (error: unknown) => escaped.push(error);

beforeAll(async () => {
  process.on('unhandledRejection', onEscaped);
  redis = createTestRedis('robustness');
  origin = await startRawOrigin();
  const originId = crypto.randomUUID();
  const snapshot = buildSnapshot({
    subdomain: 'robust',
    origins: [
      {
        id: originId,
        targets: [origin.url],
        timeout_seconds: 5,
        // Garbage answers are failures: without these off the origin would be ejected after a few runs
        // and the rest would only exercise the 503 path.
        circuit_breaker: { enabled: false },
        health_check: { active: { enabled: false }, passive: { enabled: false } },
      },
    ],
    routes: [
      {
        origin_id: originId,
        path_pattern: '/cached/*',
        cache_policy: { ttl_seconds: 30, vary_headers: ['accept'], stale_while_revalidate_seconds: 5 },
        rate_limit: { requests_per_second: 1000, burst: 100_000 },
      },
      { origin_id: originId, path_pattern: '/open/*' },
      {
        origin_id: originId,
        path_pattern: '/keyed/*',
        auth_mode: 'jwt_or_apikey',
        cache_policy: { ttl_seconds: 30 },
        rate_limit: { requests_per_second: 1000, burst: 100_000, scope: 'api_key' },
      },
      { origin_id: originId, path_pattern: '/jwt/*', auth_mode: 'jwt_required' },
      {
        origin_id: originId,
        path_pattern: '/limited/*',
        rate_limit: { requests_per_second: 1, burst: 3, scope: 'ip' },
      },
    ],
    apiKeys: [{ key_hash: hashApiKey(PEPPER, API_KEY) }],
  });
  const config = parseSettings(
    { ...configPlaneSettings, ...gatewaySettings },
    {
      GATEWAY_PORT: '0',
      GATEWAY_ADMIN_PORT: '0',
      GATEWAY_HOST: '127.0.0.1',
      API_KEY_PEPPER: PEPPER,
      GATEWAY_ACCESS_LOG_SAMPLE_RATE: '1',
      GATEWAY_REDIS_KEY_PREFIX: redis.prefix,
      ROLLOUT_KEY_PREFIX: `${redis.prefix}rollout:`,
      GATEWAY_HEADERS_TIMEOUT_MS: '2000',
      // The raw origin runs on 127.0.0.1.
      ORIGIN_BLOCKED_CIDRS: ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK.join(','),
      GATEWAY_REQUEST_TIMEOUT_MS: '3000',
    },
  );
  const logLines = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      accessLines += chunk.toString('utf8').split('"kind":"access"').length - 1;
      callback();
    },
  });
  const logger = createLogger({ service: 'gateway-robustness', stream: logLines });
  const bus = createInMemorySnapshotBus();
  await bus.publish([
    { kind: 'snapshot', tenantId: snapshot.tenant_id, version: BigInt(snapshot.version), snapshot },
  ]);
  replica = await startGatewayReplica({
    config,
    bus,
    redis: redis.client,
    registry: createMetricsRegistry('gateway-robustness'),
    logger,
    accessLogSink: streamSink(logLines), // access lines have their own writer; same destination
  });
  await replica.configPlane.ready;
  await replica.responseCache.prepareTenant(snapshot.tenant_id);
  port = replica.gateway.trafficPort;
}, 60_000);

afterAll(async () => {
  process.off('unhandledRejection', onEscaped);
  await replica?.close();
  await origin?.close();
  await redis?.cleanup();
});

let nextScenario = 0;

async function answerOf(request: ClientRequest, scenario: OriginScenario | undefined): Promise<RawAnswer> {
  const id = `s${nextScenario++}`;
  if (scenario) scenarios.set(id, scenario);
  try {
    return await sendRaw(port, request, id);
  } finally {
    scenarios.delete(id);
  }
}

function expectServed(answer: RawAnswer): void {
  expect(answer.statusLine).toMatch(/^HTTP\/1\.[01] \d{3}\b/);
  expect(answer.text).not.toContain('"code":"internal_error"');
}

function parameters<Ts>(runs: number): fc.Parameters<Ts> {
  return {
    seed: SEED,
    numRuns: runs,
    endOnFailure: true,
    reporter: (details) => {
      if (!details.failed) return;
      throw new Error(
        `${fc.defaultReportMessage(details)}\nfailure: ${String(details.errorInstance)}\n` +
          `replay with GATEWAY_PROPERTY_SEED=${details.seed} (counterexample path ${details.counterexamplePath})`,
      );
    },
  };
}

describe('a replica with every stage on, under arbitrary input', () => {
  it('answers every request, whatever the origin sends back', async () => {
    const servedBefore = scenariosServed;
    const request = fc.record({
      method: fc.constantFrom('GET', 'GET', 'HEAD', 'POST'),
      host: fc.constant(HOST),
      path: fc
        .tuple(fc.constantFrom('cached', 'open', 'keyed', 'limited'), fc.stringMatching(/^[a-z0-9]{1,8}$/))
        .map(([route, leaf]) => `/${route}/${leaf}`),
      headers: fc.constantFrom<Array<[string, string]>>(
        [],
        [['x-api-key', API_KEY]],
        [['accept', 'text/plain']],
      ),
      body: fc.constantFrom('', 'payload'),
    });
    await fc.assert(
      fc.asyncProperty(request, originScenario, async (clientSide, originSide) => {
        expectServed(await answerOf(clientSide, originSide));
      }),
      parameters(RUNS),
    );
    // Most runs must have reached the origin (the rest: cache hits, 429s).
    expect(scenariosServed - servedBefore).toBeGreaterThan(RUNS / 2);
  }, 120_000);

  it('answers every request, whatever the client sends', async () => {
    await fc.assert(
      fc.asyncProperty(clientRequest, async (clientSide) => {
        expectServed(await answerOf(clientSide, undefined));
      }),
      parameters(RUNS),
    );
  }, 120_000);

  it('answers when both sides are arbitrary', async () => {
    await fc.assert(
      fc.asyncProperty(clientRequest, originScenario, async (clientSide, originSide) => {
        expectServed(await answerOf(clientSide, originSide));
      }),
      parameters(Math.ceil(RUNS / 2)),
    );
  }, 120_000);

  it('is still up afterwards: serves, reports metrics, logged access lines, left nothing unhandled', async () => {
    const answer = await answerOf(
      { method: 'GET', host: HOST, path: '/open/after-the-storm', headers: [], body: '' },
      undefined,
    );
    expect(answer.statusLine).toBe('HTTP/1.1 200 OK');
    const metrics = await fetch(`http://127.0.0.1:${replica.gateway.adminPort}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain('vantageedge_gateway_request_duration_seconds');
    expect(accessLines).toBeGreaterThan(0);
    expect(escaped).toEqual([]);
  });
});
