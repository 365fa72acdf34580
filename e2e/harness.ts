import { type ChildProcess, execFile, spawn } from 'node:child_process';
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import path from 'node:path';
import type tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK } from '@vantageedge/shared/net/origin-address-policy';
import {
  type ClerkTestKeys,
  type ClerkTokenClaims,
  createClerkTestKeys,
  OFFLINE_CLERK_ISSUER,
  signClerkToken,
} from '@vantageedge/shared/testing/clerk-tokens';
import { distinctFreePorts } from '@vantageedge/shared/testing/free-ports';
import { TEST_INFRA, uniqueSuffix } from '@vantageedge/shared/testing/infrastructure';
import { createTestKafka, uniqueTopic } from '@vantageedge/shared/testing/kafka';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import { bundledEntryPoint, serviceNodeArgs } from '@vantageedge/shared/testing/service-bundle';
import { Redis } from 'ioredis';
import { logLevel } from 'kafkajs';
import { WebSocketServer } from 'ws';

/**
 * System end-to-end harness: every service is its own OS process, started the way a user starts it
 * (`node --import tsx <entry point>`, or the integration run's bundle of that entry point: see
 * shared/src/testing/service-bundle.ts) with its settings in the environment. Each process runs in its own
 * process group so teardown kills everything it started; stdout/stderr tails are kept so a service that
 * does not come up fails the test with its own last words.
 */

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(here, '..');

const TAIL_CHARS = 6_000;
const OUTPUT_CHARS = 8_000_000;

export const ENTRY_POINTS = {
  controlPlane: 'services/control-plane/src/main.ts',
  readModels: 'projections/src/read-models/main.ts',
  snapshots: 'projections/src/snapshots/main.ts',
  gateway: 'services/gateway/src/main.ts',
} as const;

export interface ServiceProcess {
  readonly name: string;
  readonly child: ChildProcess;
  /** Last few KB of stdout and stderr, for failure messages. */
  tail(): string;
  /** Last few KB of stderr alone (where a service reports a setting it refuses). */
  stderr(): string;
  /** Everything it wrote to stdout and stderr so far, up to OUTPUT_CHARS (for sweeps over its output). */
  output(): string;
  /** Resolves with the first stdout line containing `text` (lines already seen count). */
  waitForLine(text: string, timeoutMs?: number): Promise<string>;
  exited(): boolean;
  /** SIGTERM to the whole process group, SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

export { distinctFreePorts, freePort } from '@vantageedge/shared/testing/free-ports';

/**
 * Runs `start` with `count` fresh ports, again with new ones when the service it started exited because
 * one of them was taken after all (a random pick is checked, not reserved, and tests start in parallel).
 */
export async function onFreePorts<N extends 1 | 2, T>(
  count: N,
  start: (ports: Ports<N>) => Promise<T>,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const ports = await distinctFreePorts(count);
    try {
      return await start(ports as Ports<N>);
    } catch (error) {
      if (attempt >= 3 || !String(error).includes('EADDRINUSE')) throw error;
    }
  }
}

type Ports<N extends 1 | 2> = N extends 1 ? [number] : [number, number];

const running = new Set<ServiceProcess>();

// If the test process dies without its teardown (crash, worker killed), take the services with it.
process.once('exit', () => {
  for (const service of running) {
    try {
      if (service.child.pid !== undefined) process.kill(-service.child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** Kills every process this harness started and has not stopped yet (last-resort teardown). */
export async function stopAllServices(): Promise<void> {
  await Promise.all([...running].map((service) => service.stop()));
}

export function startService(name: string, entry: string, env: Record<string, string>): ServiceProcess {
  // node itself (no tsx CLI wrapper whose death would orphan the real process), in a new process group
  // (detached) so a group kill reaches anything the service might spawn. A compiled entry point
  // (dist/…/*.js) runs on plain node, as in production.
  const child = spawn(process.execPath, serviceNodeArgs(entry), {
    cwd: REPO_ROOT,
    env: { ...process.env, NODE_OPTIONS: '--enable-source-maps', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  let err = '';
  let everything = '';
  const keep = (text: string) => {
    if (everything.length < OUTPUT_CHARS) everything += text;
  };
  let lineBuffer = '';
  const lines: string[] = [];
  const waiters: Array<{ text: string; resolve: (line: string) => void }> = [];
  child.stdout?.on('data', (chunk: Buffer) => {
    const text = chunk.toString();
    keep(text);
    out = (out + text).slice(-TAIL_CHARS);
    lineBuffer += text;
    let newline = lineBuffer.indexOf('\n');
    while (newline >= 0) {
      const line = lineBuffer.slice(0, newline);
      lineBuffer = lineBuffer.slice(newline + 1);
      if (lines.length < 2_000) lines.push(line);
      for (const waiter of [...waiters]) {
        if (line.includes(waiter.text)) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve(line);
        }
      }
      newline = lineBuffer.indexOf('\n');
    }
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    keep(chunk.toString());
    err = (err + chunk.toString()).slice(-TAIL_CHARS);
  });
  let exitInfo: string | undefined;
  const exitPromise = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exitInfo = `exited with ${code ?? signal}`;
      resolve();
    });
  });

  const service: ServiceProcess = {
    name,
    child,
    tail: () =>
      `--- ${name} (pid ${child.pid}) ${exitInfo ?? 'running'} ---\n` +
      `stderr tail:\n${err.trim() || '(empty)'}\nstdout tail:\n${out.trim() || '(empty)'}`,
    stderr: () => err,
    output: () => everything,
    exited: () => exitInfo !== undefined,
    waitForLine(text, timeoutMs = 30_000) {
      const seen = lines.find((line) => line.includes(text));
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const waiter = {
          text,
          resolve: (line: string) => {
            clearTimeout(timer);
            resolve(line);
          },
        };
        const fail = (why: string) => {
          const index = waiters.indexOf(waiter);
          if (index < 0) return;
          waiters.splice(index, 1);
          reject(new Error(`${name}: no log line "${text}" (${why})\n${service.tail()}`));
        };
        const timer = setTimeout(() => fail(`after ${timeoutMs} ms`), timeoutMs);
        waiters.push(waiter);
        void exitPromise.then(() => {
          clearTimeout(timer);
          fail('the process exited');
        });
      });
    },
    async stop(graceMs = 5_000) {
      running.delete(service);
      if (exitInfo !== undefined || child.pid === undefined) return;
      const groupKill = (signal: NodeJS.Signals) => {
        try {
          process.kill(-(child.pid as number), signal);
        } catch {
          // already gone
        }
      };
      groupKill('SIGTERM');
      const timer = setTimeout(() => groupKill('SIGKILL'), graceMs);
      await exitPromise;
      clearTimeout(timer);
      // Anything left in the group (there should be nothing) goes too.
      groupKill('SIGKILL');
    },
  };
  running.add(service);
  return service;
}

/** Polls `url` until it answers `expectStatus`; fails with the service's output tail otherwise. */
export async function waitForHttp(
  service: ServiceProcess,
  url: string,
  { timeoutMs = 60_000, expectStatus = 200 } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    if (service.exited()) break;
    try {
      const response = await fetch(url);
      const body = await response.text();
      if (response.status === expectStatus) return;
      last = `status ${response.status}: ${body.slice(0, 300)}`;
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    await sleep(100);
  }
  throw new Error(`${service.name} did not answer ${expectStatus} on ${url} (${last})\n${service.tail()}`);
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------------
// HTTP client with an explicit Host header (fetch cannot reliably set Host).

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export function httpRequest(
  url: string,
  {
    method = 'GET',
    headers = {},
    body,
    agent,
    timeoutMs = 10_000,
  }: {
    method?: string;
    headers?: Record<string, string>;
    body?: string;
    agent?: http.Agent;
    timeoutMs?: number;
  } = {},
): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method, headers, agent, timeout: timeoutMs }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () =>
        resolve({
          status: response.statusCode ?? 0,
          headers: response.headers,
          body: Buffer.concat(chunks).toString(),
        }),
      );
      response.on('error', reject);
    });
    request.on('timeout', () => request.destroy(new Error(`timeout after ${timeoutMs} ms: ${url}`)));
    request.on('error', reject);
    request.end(body);
  });
}

// ---------------------------------------------------------------------------------------------------
// The `vantageedge` CLI as its own process.

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Node's arguments that run the `vantageedge` CLI: the integration run's bundle of it (as
 * dist/tools/cli/main.js runs), else the package's bin (its TypeScript through tsx).
 */
export function vantageedgeNodeArgs(): string[] {
  const bundle = bundledEntryPoint('tools/cli/src/main.ts');
  return bundle === undefined
    ? [path.join(REPO_ROOT, 'tools/cli/bin/vantageedge.js')]
    : ['--enable-source-maps', bundle];
}

/** `vantageedge …` as its own process, with the config file `configFile`. */
export function runVantageedge(
  args: readonly string[],
  { configFile, input, env = {} }: { configFile: string; input?: string; env?: Record<string, string> },
): Promise<CliRun> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [...vantageedgeNodeArgs(), ...args],
      {
        cwd: REPO_ROOT,
        env: { ...process.env, VANTAGEEDGE_CONFIG: configFile, NODE_OPTIONS: '', ...env },
        timeout: 60_000,
      },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
        resolve({ code, stdout: stdout.toString(), stderr: stderr.toString() });
      },
    );
    child.stdin?.end(input);
  });
}

// ---------------------------------------------------------------------------------------------------
// Test origins: local HTTP servers that say who they are and count requests.

export interface TestOrigin {
  name: string;
  url: string;
  /** Requests received, by path (query included). */
  hits: Map<string, number>;
  total(): number;
  /** TLS origins: the server names (SNI) clients asked for, '' for none, in order. */
  serverNames: string[];
  /** TLS origins: handshakes the server failed or that the client abandoned (it refused the certificate). */
  failedHandshakes(): number;
  /** TLS origins asking for a client certificate: the subject of each one presented and verified, in order. */
  clientSubjects: string[];
  close(): Promise<void>;
}

export interface TestOriginOptions {
  /** Serve HTTPS with this certificate chain (leaf first) and key; default: plain HTTP. */
  tls?: {
    certificatePem: string;
    privateKeyPem: string;
    /** Ask every client for a certificate issued by one of these CAs and refuse the handshake without one. */
    clientCaPem?: string;
  };
  /** The host the URL names (default 127.0.0.1; the server listens on 127.0.0.1 either way). */
  urlHost?: string;
  /** Accept WebSocket upgrades and echo every message back. */
  webSocketEcho?: boolean;
}

/** A `startOrigin` answer that fails every request (health probes too): 503, no body. */
export function answerEvery503(_req: http.IncomingMessage, res: http.ServerResponse): boolean {
  res.writeHead(503);
  res.end();
  return true;
}

export async function startOrigin(
  name: string,
  respond?: (req: http.IncomingMessage, res: http.ServerResponse) => boolean,
  options: TestOriginOptions = {},
): Promise<TestOrigin> {
  const hits = new Map<string, number>();
  const serverNames: string[] = [];
  const clientSubjects: string[] = [];
  let failedHandshakes = 0;
  const listener = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = req.url ?? '/';
    hits.set(url, (hits.get(url) ?? 0) + 1);
    req.resume();
    if (respond?.(req, res)) return;
    const body = JSON.stringify({ origin: name, path: url, method: req.method, n: hits.get(url) });
    res.writeHead(200, { 'content-type': 'application/json', 'x-origin': name });
    res.end(body);
  };
  const server =
    options.tls === undefined
      ? http.createServer(listener)
      : https.createServer(
          {
            cert: options.tls.certificatePem,
            key: options.tls.privateKeyPem,
            ...(options.tls.clientCaPem === undefined
              ? {}
              : { ca: options.tls.clientCaPem, requestCert: true, rejectUnauthorized: true }),
          },
          listener,
        );
  if (options.tls !== undefined) {
    server.on('secureConnection', (socket: tls.TLSSocket) => {
      serverNames.push(typeof socket.servername === 'string' ? socket.servername : '');
      const subject = socket.getPeerCertificate().subject?.CN;
      if (subject !== undefined) clientSubjects.push(String(subject));
    });
    server.on('tlsClientError', () => {
      failedHandshakes++;
    });
  }
  const webSockets = options.webSocketEcho ? new WebSocketServer({ server }) : undefined;
  webSockets?.on('connection', (socket) => {
    socket.on('message', (data, binary) => socket.send(data, { binary }));
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address() as net.AddressInfo;
  const scheme = options.tls === undefined ? 'http' : 'https';
  return {
    name,
    url: `${scheme}://${options.urlHost ?? '127.0.0.1'}:${address.port}`,
    hits,
    total: () => [...hits.values()].reduce((a, b) => a + b, 0),
    serverNames,
    failedHandshakes: () => failedHandshakes,
    clientSubjects,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of webSockets?.clients ?? []) socket.terminate();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// ---------------------------------------------------------------------------------------------------
// The whole system: control plane, both projectors, N gateway replicas.

export interface GatewayReplica {
  id: string;
  service: ServiceProcess;
  port: number;
  adminPort: number;
  /** http://127.0.0.1:<port> */
  url: string;
  adminUrl: string;
  agent: http.Agent;
  /** A request to `path` on this replica for tenant host `<subdomain>.localhost`. */
  get(subdomain: string, pathname: string, headers?: Record<string, string>): Promise<HttpResponse>;
  /** A request to `path` on this replica with the Host header `host` (e.g. a custom domain). */
  getHost(host: string, pathname: string, headers?: Record<string, string>): Promise<HttpResponse>;
}

export interface AdminResponse {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
  text: string;
}

/** An admin API call to the control plane at `baseUrl` with the bearer `token` (a string body is sent as is). */
export async function adminRequest(
  baseUrl: string,
  method: string,
  pathname: string,
  { body, token, headers = {} }: { body?: unknown; token: string; headers?: Record<string, string> },
): Promise<AdminResponse> {
  const response = await fetch(`${baseUrl}${pathname}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...headers,
    },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const text = await response.text();
  let parsed: Record<string, unknown> = {};
  try {
    parsed = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    parsed = {};
  }
  return { status: response.status, headers: response.headers, body: parsed, text };
}

export interface SystemOptions {
  /** Extra environment for every gateway replica. */
  gatewayEnv?: Record<string, string>;
  /** Extra environment for the control plane (e.g. DNS_RESOLVER). */
  controlPlaneEnv?: Record<string, string>;
  /** Extra environment for both projectors (e.g. their metrics ports). */
  projectorEnv?: Record<string, string>;
  /** Kafka bootstrap brokers; default the shared local broker (a private one for fault tests). */
  kafkaBrokers?: readonly string[];
  /** Redis for every service; default the shared local server (a private one for fault tests). */
  redisUrl?: string;
  /** Redis Cluster seeds (REDIS_CLUSTER_NODES) for every service instead of redisUrl. */
  redisClusterNodes?: readonly string[];
  /** Delete the topic on close() even though kafkaBrokers was given (a shared cluster, not a private broker). */
  deleteTopicOnClose?: boolean;
  /** PostgreSQL server the system's database is created on; default the shared local server. */
  databaseServerUrl?: string;
}

export class TestSystem {
  readonly database: TestDatabase;
  readonly clerk: ClerkTestKeys;
  readonly topic: string;
  readonly rolloutPrefix: string;
  /** The gateways' Redis keys (limits, cache, quotas, usage batches) of this system only. */
  readonly redisKeyPrefix: string;
  readonly pepper: string;
  readonly adminUserId = 'user_e2e_platform_admin';
  readonly services: ServiceProcess[] = [];
  readonly gateways: GatewayReplica[] = [];
  controlPlaneUrl = '';
  private readonly options: SystemOptions;

  private constructor(database: TestDatabase, clerk: ClerkTestKeys, options: SystemOptions) {
    this.database = database;
    this.clerk = clerk;
    this.options = options;
    this.topic = uniqueTopic('e2e-snapshots');
    this.rolloutPrefix = `ve-test-e2e-rollout-${uniqueSuffix()}:`;
    this.redisKeyPrefix = `ve-test-e2e-gw-${uniqueSuffix()}:`;
    this.pepper = `e2e-pepper-${uniqueSuffix()}-0123456789abcdefghijklmnopqrstuvwxyz`;
  }

  /** A fresh database, Clerk keys, topic and rollout prefix; no process started yet. */
  static async create(options: SystemOptions = {}): Promise<TestSystem> {
    const [database, clerk] = await Promise.all([
      createTestDatabase(options.databaseServerUrl ? { serverUrl: options.databaseServerUrl } : {}),
      createClerkTestKeys(),
    ]);
    return new TestSystem(database, clerk, options);
  }

  /** Settings every service of this system gets (database, Redis, Kafka topic, keys, pepper). */
  commonEnv(): Record<string, string> {
    return {
      DATABASE_URL: this.database.url,
      EVENT_STORE: 'postgres',
      REDIS_URL: this.options.redisUrl ?? TEST_INFRA.redisUrl,
      ...(this.options.redisClusterNodes
        ? { REDIS_CLUSTER_NODES: this.options.redisClusterNodes.join(',') }
        : {}),
      KAFKA_BROKERS: (this.options.kafkaBrokers ?? TEST_INFRA.kafkaBrokers).join(','),
      SNAPSHOT_BUS: 'kafka',
      SNAPSHOT_TOPIC: this.topic,
      SNAPSHOT_TOPIC_PARTITIONS: '3',
      ROLLOUT_KEY_PREFIX: this.rolloutPrefix,
      // Usage batches and quota counters of another system on the same Redis are not this one's.
      GATEWAY_REDIS_KEY_PREFIX: this.redisKeyPrefix,
      API_KEY_PEPPER: this.pepper,
      CLERK_JWT_KEY: this.clerk.publicKeyPem,
      CLERK_ISSUER: OFFLINE_CLERK_ISSUER,
      PLATFORM_ADMIN_USER_IDS: this.adminUserId,
      LOG_LEVEL: 'info',
      OTEL_ENABLED: 'false',
      // The test origins run on 127.0.0.1 (the services' own listeners stay refused).
      ORIGIN_BLOCKED_CIDRS: ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK.join(','),
      // No load balancer in front to notice a drain: tests that are about draining set their own.
      CONTROL_PLANE_DRAIN_SECONDS: '0',
    };
  }

  /** Control plane and both projectors, in parallel; resolves when all three are up. */
  async startControlSide(): Promise<void> {
    const env = this.commonEnv();
    const readModels = startService('read-model-projector', ENTRY_POINTS.readModels, {
      ...env,
      READ_MODEL_PROJECTOR_METRICS_PORT: '0',
      ...this.options.projectorEnv,
    });
    const snapshots = startService('snapshot-projector', ENTRY_POINTS.snapshots, {
      ...env,
      SNAPSHOT_PROJECTOR_METRICS_PORT: '0',
      SNAPSHOT_PROJECTOR_BATCH_SIZE: '100',
      ...this.options.projectorEnv,
    });
    this.services.push(readModels, snapshots);
    const controlPlaneUp = this.startControlPlane('control-plane', this.options.controlPlaneEnv).then(
      (url) => {
        this.controlPlaneUrl = url;
      },
    );
    await Promise.all([
      controlPlaneUp,
      readModels.waitForLine('read-model projector started', 60_000),
      snapshots.waitForLine('snapshot projector started', 60_000),
    ]);
  }

  /**
   * A control-plane process named `name` on a free port, with this system's settings and `env`: its base
   * URL once it answers /readyz (stopped, and the failure thrown, if it never does).
   */
  async startControlPlane(name: string, env: Record<string, string> = {}): Promise<string> {
    return onFreePorts(1, async ([port]) => {
      const cp = startService(name, ENTRY_POINTS.controlPlane, {
        ...this.commonEnv(),
        CONTROL_PLANE_METRICS_PORT: '0',
        ...env,
        CONTROL_PLANE_PORT: String(port),
        CONTROL_PLANE_HOST: '127.0.0.1',
      });
      this.services.push(cp);
      const url = `http://127.0.0.1:${port}`;
      try {
        await waitForHttp(cp, `${url}/readyz`);
      } catch (error) {
        await cp.stop();
        throw error;
      }
      return url;
    });
  }

  /** `count` gateway replicas in parallel; resolves when each answers 200 on /readyz. */
  async startGateways(count: number, env: Record<string, string> = {}): Promise<GatewayReplica[]> {
    const started = await Promise.all(
      Array.from({ length: count }, () =>
        onFreePorts(2, async ([port, adminPort]) => {
          const id = `e2e-gw-${this.gateways.length}-${uniqueSuffix()}`;
          const service = startService(`gateway ${id}`, ENTRY_POINTS.gateway, {
            ...this.commonEnv(),
            // No load balancer in front to notice a drain: stop at once on teardown.
            GATEWAY_DRAIN_SECONDS: '0',
            ...this.options.gatewayEnv,
            ...env,
            GATEWAY_PORT: String(port),
            GATEWAY_ADMIN_PORT: String(adminPort),
            GATEWAY_HOST: '127.0.0.1',
            GATEWAY_BASE_DOMAINS: 'vantageedge.dev,localhost',
            GATEWAY_REPLICA_ID: id,
          });
          this.services.push(service);
          const url = `http://127.0.0.1:${port}`;
          // Idle sockets are dropped after 2 s, well before the gateway's 5 s keep-alive timeout: reusing a
          // socket the server is closing at that very moment fails with "socket hang up" (a client race,
          // not a gateway failure), and requests here are never retried.
          const agent = new http.Agent({ keepAlive: true, maxSockets: 64, timeout: 2_000 });
          const replica: GatewayReplica = {
            id,
            service,
            port,
            adminPort,
            url,
            adminUrl: `http://127.0.0.1:${adminPort}`,
            agent,
            get: (subdomain, pathname, headers = {}) =>
              httpRequest(`${url}${pathname}`, {
                headers: { host: `${subdomain}.localhost`, ...headers },
                agent,
              }),
            getHost: (host, pathname, headers = {}) =>
              httpRequest(`${url}${pathname}`, { headers: { host, ...headers }, agent }),
          };
          try {
            await waitForHttp(service, `${replica.adminUrl}/readyz`, { timeoutMs: 90_000 });
          } catch (error) {
            await service.stop();
            throw error;
          }
          this.gateways.push(replica);
          return replica;
        }),
      ),
    );
    return started;
  }

  token(claims: Partial<ClerkTokenClaims> = {}): Promise<string> {
    return signClerkToken(this.clerk, { userId: this.adminUserId, ...claims });
  }

  /** An admin API call with a platform-admin Clerk token (or `token`). */
  async admin(
    method: string,
    pathname: string,
    { body, token, headers = {} }: { body?: unknown; token?: string; headers?: Record<string, string> } = {},
  ): Promise<AdminResponse> {
    return adminRequest(this.controlPlaneUrl, method, pathname, {
      body,
      token: token ?? (await this.token()),
      headers,
    });
  }

  /** A set-up command that must create (201): the new resource's id and the event position it reached. */
  async create(pathname: string, body: Record<string, unknown>): Promise<{ id: string; position: bigint }> {
    const response = await this.admin('POST', pathname, { body });
    if (response.status !== 201)
      throw new Error(`POST ${pathname} answered ${response.status}: ${response.text}`);
    return {
      id: response.body['id'] as string,
      position: BigInt(response.headers.get('x-event-position') ?? '0'),
    };
  }

  /** A connection to the Redis Cluster master that holds this system's rollout keys. */
  private async rolloutKeysNode(seeds: readonly string[]): Promise<Redis | undefined> {
    const [host, port] = (seeds[0] ?? '').split(':');
    const seed = new Redis({ host: host ?? '127.0.0.1', port: Number(port), maxRetriesPerRequest: 2 });
    try {
      const slot = Number(await seed.cluster('KEYSLOT', `${this.rolloutPrefix}{rollout}`));
      const ranges = (await seed.cluster('SLOTS')) as unknown as Array<[number, number, [string, number]]>;
      const owner = ranges.find(([from, to]) => slot >= from && slot <= to)?.[2];
      return owner ? new Redis({ host: owner[0], port: owner[1], maxRetriesPerRequest: 2 }) : undefined;
    } catch {
      return undefined;
    } finally {
      seed.disconnect();
    }
  }

  /** Every service's output tail, for assertion messages. */
  tails(): string {
    return this.services.map((service) => service.tail()).join('\n');
  }

  /** Stops every process, then removes what the run left behind: database, topic, rollout keys. */
  async close(): Promise<void> {
    await Promise.all(this.services.map((service) => service.stop()));
    for (const gateway of this.gateways) gateway.agent.destroy();
    // A private broker (kafkaBrokers given) is destroyed by its owner, topics and all.
    const admin =
      this.options.kafkaBrokers && !this.options.deleteTopicOnClose
        ? undefined
        : createTestKafka({
            clientId: `ve-test-close-${uniqueSuffix()}`,
            brokers: this.options.kafkaBrokers ?? TEST_INFRA.kafkaBrokers,
            level: logLevel.NOTHING,
          }).admin();
    // A private Redis (redisUrl given) is thrown away by its owner, keys and all; the rollout keys of a
    // Redis Cluster all live on one slot ({rollout} hash tag), so one node's SCAN finds them.
    const redis = this.options.redisUrl
      ? undefined
      : this.options.redisClusterNodes
        ? await this.rolloutKeysNode(this.options.redisClusterNodes)
        : new Redis(TEST_INFRA.redisUrl, { maxRetriesPerRequest: 2 });
    await Promise.all([
      this.database.drop().catch(() => {}),
      admin
        ?.connect()
        .then(() => admin.deleteTopics({ topics: [this.topic] }))
        .catch(() => {})
        .finally(() => admin.disconnect()),
      (async () => {
        if (redis === undefined) return;
        // On a Redis Cluster only the rollout keys' node is swept; the gateways' keys there expire.
        const prefixes = this.options.redisClusterNodes
          ? [this.rolloutPrefix]
          : [this.rolloutPrefix, this.redisKeyPrefix];
        for (const prefix of prefixes) {
          let cursor = '0';
          do {
            const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
            if (keys.length > 0) await redis.unlink(...keys);
            cursor = next;
          } while (cursor !== '0');
        }
      })()
        .catch(() => {})
        .finally(() => redis?.disconnect()),
    ]);
  }
}

/**
 * Polls `check` until it returns true; returns the elapsed milliseconds. Fails with the system's
 * output tails after `timeoutMs` (a loose bound: precise numbers are printed, not asserted).
 */
export async function eventually(
  what: string,
  check: () => Promise<boolean>,
  {
    timeoutMs = 20_000,
    intervalMs = 20,
    system,
  }: { timeoutMs?: number; intervalMs?: number; system?: TestSystem } = {},
): Promise<number> {
  const started = performance.now();
  let lastError = '';
  while (performance.now() - started < timeoutMs) {
    try {
      if (await check()) return performance.now() - started;
    } catch (error) {
      lastError = error instanceof Error ? error.message : String(error);
    }
    await sleep(intervalMs);
  }
  throw new Error(
    `${what}: not within ${timeoutMs} ms${lastError ? ` (last error: ${lastError})` : ''}\n${system?.tails() ?? ''}`,
  );
}
