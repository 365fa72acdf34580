import { type ChildProcess, execFileSync, spawnSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClerkTestKeys, signClerkToken } from '@vantageedge/shared/testing/clerk-tokens';
import { Redis } from 'ioredis';
import { bundleServices } from '../scripts/service-bundle.js';
import { type H2loadResult, runH2load } from './lib/h2load.js';
import { originConfig, proxyConfig, writeNginxConfig } from './lib/nginx.js';
import { pairedBlocks } from './lib/paired-blocks.js';
import {
  firstChildPid,
  freePort,
  planCpus,
  processCpuNs,
  processUsage,
  startProcess,
  stopProcess,
  waitForHttp,
} from './lib/processes.js';
import {
  markdownTable,
  median,
  type PairedRun,
  type PairedSummary,
  pairedVerdict,
  progress,
  ratio,
  round,
  type ScenarioRow,
  type SideSummary,
  scenarioRatios,
  summarize,
  summarizePaired,
  svgChart,
  type Usage,
} from './lib/report.js';
import {
  APIKEY_BROWSER,
  APIKEY_TWIN,
  BENCH_ORG,
  BENCH_PEPPER,
  POLICY_PARTS,
  SCENARIOS,
  type Scenario,
  type ScenarioContext,
} from './lib/scenarios.js';
import { type LoadResult, runWrk } from './lib/wrk.js';

/**
 * `make bench` / `make bench-quick`: the gateway side by side with nginx (reverse proxy, proxy_cache)
 * and a direct call to the origin, one load generator (wrk) for everything. See docs/benchmarks.md.
 *
 * Settings (environment): BENCH_QUICK=1 (2 s × 1 run per side), BENCH_SECONDS, BENCH_RUNS, BENCH_WARMUP_SECONDS
 * (0: no warm-up, every measured run starts on cold processes),
 * BENCH_CONNECTIONS, BENCH_SCENARIOS (comma list of ids), BENCH_LARGE=1 (add the 64 KiB body scenario),
 * BENCH_CPU_PROF=<scenario id> (a V8 CPU profile of the gateway serving that scenario, startup excluded,
 * in bench-results/profiles/), BENCH_PAIRS, BENCH_PAIR_SECONDS and BENCH_PAIR_PROCESSES (the paired
 * comparison: 40 runs of 2 s on 3 pairs of processes, 12 on 2 in quick mode, rounded up to whole couples), BENCH_POLICY_PARTS=1 (also each route policy alone against API-key auth),
 * REDIS_URL, BENCH_OUT_DIR (default bench-results/).
 */
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const quick = process.env['BENCH_QUICK'] === '1';
const seconds = Number(process.env['BENCH_SECONDS'] ?? (quick ? 2 : 5));
const runs = Number(process.env['BENCH_RUNS'] ?? (quick ? 1 : 3));
const warmupSeconds = Number(process.env['BENCH_WARMUP_SECONDS'] ?? (quick ? 1 : 2));
const connections = Number(process.env['BENCH_CONNECTIONS'] ?? 50);
const redisUrl = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:56379';
const profileScenario = process.env['BENCH_CPU_PROF'];
const redisPrefix = process.env['BENCH_REDIS_PREFIX'] ?? `ve-bench:${new Date().toISOString()}:`;
const only = process.env['BENCH_SCENARIOS']?.split(',').map((s) => s.trim());
/** Scenarios that also get the latency-at-fixed-rate comparison (added latency over direct). */
const FIXED_RATE_SCENARIOS = ['public', 'full'];
const FIXED_RATE_FRACTION = 0.5;
/**
 * Scenarios also measured against another at the same time on the same core (see pairedComparison),
 * when both are selected; the control runs with them.
 */
const PAIRED: readonly PairedDefinition[] = [
  // The route policies a browser-facing API turns on cost at most 5% over the API-key route.
  { variant: 'policies', base: 'apikey', maxRatio: 1.05 },
  // The same, the request being the same on both sides: what the policies themselves cost.
  { variant: 'policies', base: APIKEY_BROWSER.id, maxRatio: null },
  // BENCH_POLICY_PARTS=1: each policy alone against the API-key route, to see where the cost is.
  ...(process.env['BENCH_POLICY_PARTS'] === '1'
    ? POLICY_PARTS.map((part) => ({ variant: part.id, base: 'apikey', maxRatio: null }))
    : []),
];
/** Two identical routes: the method's own error (its interval should hold 1). */
const PAIRED_CONTROL: PairedDefinition = { variant: APIKEY_TWIN.id, base: 'apikey', maxRatio: null };
/** Runs per paired comparison, BENCH_PAIR_SECONDS each (both sides at once). */
const pairCount = Number(process.env['BENCH_PAIRS'] ?? (quick ? 12 : 40));
const pairSeconds = Number(process.env['BENCH_PAIR_SECONDS'] ?? 2);
/**
 * Gateway process pairs per paired comparison, each running an equal share of its runs: a process's
 * JIT decisions are its own for its whole life and can favour one side's code path by a percent or two,
 * which swapping sides within one pair of processes does not average out (two runs minutes apart
 * differed by more than either's interval).
 */
const pairProcesses = Math.max(1, Number(process.env['BENCH_PAIR_PROCESSES'] ?? (quick ? 2 : 3)));
const PACING_DELAY_MS = 10;

const scenarios = SCENARIOS.filter((s) =>
  only ? only.includes(s.id) : !s.optional || process.env['BENCH_LARGE'] === '1',
);
const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const workDir = mkdtempSync(path.join(os.tmpdir(), 've-bench-'));
// The gateway and the floor run as `make build` compiles a service (not through tsx, whose transform
// adds work a production replica does not do), from inside the repository so node_modules resolves.
const buildDir = path.join(repo, 'bench-results', 'build');
const children: ChildProcess[] = [];
const startedAt = Date.now();
// Steps for the progress display: direct, the Node-floor reference, each scenario, each fixed-rate run.
/** Scenarios a paired comparison may use besides the selected ones. */
const pairedOnly = [APIKEY_TWIN, APIKEY_BROWSER, ...POLICY_PARTS];
const selectedPairs = PAIRED.filter(
  (p) =>
    // The control, run with any comparison, is against the API-key route.
    scenarios.some((s) => s.id === 'policies') &&
    scenarios.some((s) => s.id === 'apikey') &&
    [...scenarios, ...pairedOnly].some((s) => s.id === p.variant) &&
    [...scenarios, ...pairedOnly].some((s) => s.id === p.base),
);
const pairs = selectedPairs.length === 0 ? [] : [PAIRED_CONTROL, ...selectedPairs];
const totalSteps =
  2 + scenarios.length + scenarios.filter((s) => FIXED_RATE_SCENARIOS.includes(s.id)).length + pairs.length;
let doneSteps = 0;
const step = (label: string) => progress(doneSteps, totalSteps, label, startedAt);

function log(line: string): void {
  if (process.stderr.isTTY) process.stderr.write('\r\x1b[2K');
  process.stderr.write(`${line}\n`);
}

/** First line a tool prints about its version (nginx and wrk print it on stderr, wrk exits 1). */
function versionOf(command: string, args: string[]): string {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  if (result.error) return 'not installed';
  return `${result.stdout ?? ''}${result.stderr ?? ''}`.trim().split('\n')[0] ?? 'unknown';
}

function machine() {
  const cpus = os.cpus();
  return {
    hostname: os.hostname(),
    cpu_model: cpus[0]?.model ?? 'unknown',
    cores: os.availableParallelism(),
    memory_gib: round(os.totalmem() / 2 ** 30, 1),
    kernel: `${os.type()} ${os.release()}`,
    load_average_at_start: os.loadavg().map((l) => round(l, 2)),
  };
}

/** One request with an explicit Host header; resolves status, the X-Cache header and the body's start. */
function probe(
  port: number,
  pathName: string,
  headers: Record<string, string>,
): Promise<{ status: number; xCache: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: pathName, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (body.length < 300) body += chunk;
      });
      res.on('end', () => {
        const xCache = res.headers['x-cache'];
        resolve({
          status: res.statusCode ?? 0,
          xCache: Array.isArray(xCache) ? xCache[0] : xCache,
          body: body.slice(0, 300),
        });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

async function startNginx(name: string, cpus: string, config: (dir: string) => string, port: number) {
  const dir = path.join(workDir, name);
  const file = writeNginxConfig(dir, config(dir));
  const child = startProcess(cpus, 'nginx', ['-p', dir, '-c', file, '-e', path.join(dir, 'error.log')]);
  children.push(child);
  await untilExit(child, waitForHttp(`http://127.0.0.1:${port}/`), `nginx ${name}`);
  return child;
}

interface Gateway {
  child: ChildProcess;
  port: number;
  logFile: string;
}

/** Rejects as soon as the process exits, instead of waiting for the readiness timeout. */
function untilExit<T>(child: ChildProcess, work: Promise<T>, name: string): Promise<T> {
  return Promise.race([
    work,
    new Promise<never>((_, reject) =>
      child.once('exit', (code, signal) =>
        reject(new Error(`${name} exited (${code ?? signal}) while starting`)),
      ),
    ),
  ]);
}

async function startGatewayProcess(
  scenario: Scenario,
  ctx: ScenarioContext,
  cpus: string,
  clerkKey: string,
  extraEnv: Record<string, string> = {},
): Promise<Gateway> {
  const snapshotFile = path.join(workDir, `${scenario.id}.snapshots.json`);
  writeFileSync(snapshotFile, JSON.stringify(scenario.snapshots(ctx)));
  const port = await freePort();
  const profileDir = path.join(repo, 'bench-results', 'profiles');
  if (profileScenario === scenario.id) mkdirSync(profileDir, { recursive: true });
  // The access log goes to a file (page cache), as a replica logging to disk would: a pipe to this
  // harness process would make the gateway wait on the harness, which is not what we measure.
  const logFile = path.join(workDir, `${scenario.id}.gateway.log`);
  const logFd = openSync(logFile, 'w');
  const child = startProcess(
    cpus,
    process.execPath,
    ['--enable-source-maps', path.join(buildDir, 'gateway-under-test.js')],
    {
      ...process.env,
      NODE_ENV: 'production',
      NODE_OPTIONS: '',
      BENCH_SNAPSHOT_FILE: snapshotFile,
      GATEWAY_PORT: String(port),
      API_KEY_PEPPER: BENCH_PEPPER,
      CLERK_JWT_KEY: clerkKey,
      REDIS_URL: redisUrl,
      BENCH_REDIS_PREFIX: `${redisPrefix}${scenario.id}:`,
      BENCH_L1_BYTES: String(scenario.l1Bytes ?? 64 * 1024 * 1024),
      GATEWAY_ACCESS_LOG_SAMPLE_RATE: String(scenario.accessLog),
      // Like the nginx it is compared with (keepalive_requests 1000000): no per-connection budget.
      GATEWAY_MAX_REQUESTS_PER_CONNECTION: '0',
      // wrk (the fixed-rate runs' connections) and h2load are one client address with more requests in
      // flight than its share of a target's pool; nginx has no limit_conn either.
      GATEWAY_UPSTREAM_CLIENT_SHARE: '0',
      LOG_LEVEL: 'info',
      ...extraEnv,
      ...(profileScenario === scenario.id
        ? { BENCH_PROFILE_FILE: path.join(profileDir, `gateway-${scenario.id}-${stamp}.cpuprofile`) }
        : {}),
    },
    logFd,
  );
  closeSync(logFd);
  children.push(child);
  // The port answers as soon as the replica listens, before its tenants are applied (1,000 of them
  // take a second or more on one core): ready is the line it prints once every tenant is served.
  await untilExit(child, servingEveryTenant(child, 120_000), 'gateway');
  return { child, port, logFile };
}

/** Resolves on gateway-under-test's line `{"port":…,"tenants":…}` on stderr (see that file). */
function servingEveryTenant(child: ChildProcess, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => {
      child.stderr?.off('data', onData);
      reject(new Error(`gateway not serving its tenants after ${timeoutMs} ms`));
    }, timeoutMs);
    function onData(chunk: Buffer): void {
      seen = (seen + chunk.toString()).slice(-4000);
      if (!/^\{"port":\d+,"tenants":\d+\}$/m.test(seen)) return;
      clearTimeout(timer);
      child.stderr?.off('data', onData);
      resolve();
    }
    child.stderr?.on('data', onData);
  });
}

/** Makes sure both sides answer the scenario's request with 2xx (and, for cache scenarios, a HIT). */
async function checkScenario(scenario: Scenario, ctx: ScenarioContext, gwPort: number, nginxPort: number) {
  const headers = scenario.headers(ctx);
  for (const [side, port, extra] of [
    ['gateway', gwPort, { host: scenario.host }],
    ['nginx', nginxPort, {}],
  ] as const) {
    let last = await probe(port, scenario.path, { ...headers, ...extra });
    if (scenario.nginx === 'cache') {
      // The MISS is stored after it is answered: on a busy machine that can take a while.
      for (let attempt = 0; attempt < 25 && last.xCache !== 'HIT'; attempt++) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        last = await probe(port, scenario.path, { ...headers, ...extra });
      }
      if (last.xCache !== 'HIT') throw new Error(`${scenario.id}: ${side} did not answer a cache HIT in 5 s`);
    }
    if (last.status < 200 || last.status > 299) {
      throw new Error(`${scenario.id}: ${side} answered ${last.status} to ${scenario.path}: ${last.body}`);
    }
  }
}

async function measure(
  url: string,
  headers: Record<string, string>,
  cpus: string,
  pid: number | undefined,
  durationSeconds: number,
  extra: { connections?: number; delayMs?: number; pathVariants?: number } = {},
): Promise<{ result: LoadResult; usage: Usage | null }> {
  const before = pid ? processUsage(pid) : undefined;
  const t0 = process.hrtime.bigint();
  const result = await runWrk({
    url,
    headers,
    connections: extra.connections ?? connections,
    durationSeconds,
    cpus,
    ...(extra.delayMs ? { delayMs: extra.delayMs } : {}),
    ...(extra.pathVariants ? { pathVariants: extra.pathVariants } : {}),
  });
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const after = pid ? processUsage(pid) : undefined;
  const usage =
    before && after
      ? { cpuCores: (after.cpuSeconds - before.cpuSeconds) / wall, rssMiB: after.rssBytes / 2 ** 20 }
      : null;
  return { result, usage };
}

function latestOtherResults() {
  const dir = path.join(repo, 'bench-results');
  const known: Array<{ prefix: string; target: string }> = [
    { prefix: 'eventstore-', target: 'make bench-eventstore' },
    { prefix: 'replay-', target: 'make bench-replay' },
    { prefix: 'propagation-', target: 'make bench-propagation' },
    { prefix: 'upstream-', target: 'make bench-upstream' },
    { prefix: 'gateway-quick-compare', target: 'make bench-gateway' },
    { prefix: 'gateway-token-cache', target: 'make bench-gateway-auth' },
    { prefix: 'micro-', target: 'make bench-micro' },
    { prefix: 'ratelimit-auto-pipelining-', target: 'make bench-redis-pipelining' },
    { prefix: 'websocket-frames-', target: 'make bench-websocket-frames' },
  ];
  if (!existsSync(dir)) return [];
  const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
  return known.map(({ prefix, target }) => {
    const latest = files
      .filter((f) => f.startsWith(prefix))
      .map((f) => ({ f, mtime: statSync(path.join(dir, f)).mtimeMs }))
      .sort((a, b) => b.mtime - a.mtime)[0];
    if (!latest) return { target, file: null, at: null, results: null };
    let results: unknown = null;
    try {
      results = JSON.parse(readFileSync(path.join(dir, latest.f), 'utf8'));
    } catch {
      results = 'unreadable';
    }
    return { target, file: `bench-results/${latest.f}`, at: new Date(latest.mtime).toISOString(), results };
  });
}

async function main(): Promise<void> {
  execFileSync('bash', [path.join(repo, 'bench/tools.sh')], { stdio: 'inherit' });
  await bundleServices(
    repo,
    { 'gateway-under-test': 'bench/gateway-under-test.ts', 'node-floor-proxy': 'bench/node-floor-proxy.ts' },
    buildDir,
  );
  const plan = planCpus();
  log(
    `[bench] ${quick ? 'quick' : 'full'}: ${seconds}s x ${runs} run(s) per side, warm-up ${warmupSeconds}s, ${connections} connections, wrk -t1`,
  );
  log(`[bench] CPU plan: ${plan.note}`);
  log(
    `[bench] shared machine? load average now ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );

  const originPort = await freePort();
  const proxyPort = await freePort();
  const cachePort = await freePort();
  const origin = await startNginx(
    'origin',
    plan.loadCpus,
    (dir) => originConfig(dir, originPort),
    originPort,
  );
  const proxy = await startNginx(
    'proxy',
    plan.proxyCpus,
    (dir) => proxyConfig(dir, proxyPort, originPort, { cache: false }),
    proxyPort,
  );
  const cache = await startNginx(
    'proxy-cache',
    plan.proxyCpus,
    (dir) => proxyConfig(dir, cachePort, originPort, { cache: true }),
    cachePort,
  );
  void origin;

  const keys = await createClerkTestKeys();
  const jwt = await signClerkToken(keys, { userId: 'user_bench', orgId: BENCH_ORG, expiresInSeconds: 3600 });
  const ctx: ScenarioContext = { originUrl: `http://127.0.0.1:${originPort}`, jwt };

  // Direct call: the origin alone, the ceiling of this setup.
  step('direct (origin only)');
  const directUrl = `http://127.0.0.1:${originPort}/api/posts/1`;
  if (warmupSeconds > 0) await measure(directUrl, {}, plan.loadCpus, undefined, warmupSeconds);
  const directRuns: LoadResult[] = [];
  for (let i = 0; i < runs; i++) {
    directRuns.push((await measure(directUrl, {}, plan.loadCpus, undefined, seconds)).result);
  }
  const direct = summarize(directRuns, []);
  doneSteps++;
  log(`[bench] direct origin: ${direct.rps.toLocaleString('en-US')} rps, p99 ${direct.p99Ms} ms`);

  // Reference pair: nginx vs the floor of any Node proxy (node:http + undici, no gateway code), alternated.
  step('reference: nginx vs bare Node proxy');
  const floorPort = await freePort();
  const floor = startProcess(
    plan.proxyCpus,
    process.execPath,
    ['--enable-source-maps', path.join(buildDir, 'node-floor-proxy.js')],
    { ...process.env, NODE_OPTIONS: '', FLOOR_PORT: String(floorPort), FLOOR_ORIGIN_URL: ctx.originUrl },
  );
  children.push(floor);
  await untilExit(floor, waitForHttp(`http://127.0.0.1:${floorPort}/api/posts/1`, {}, 60_000), 'node floor');
  const floorUrl = `http://127.0.0.1:${floorPort}/api/posts/1`;
  const proxyUrl = `http://127.0.0.1:${proxyPort}/api/posts/1`;
  const proxyPid = proxy.pid ? firstChildPid(proxy.pid) : undefined;
  if (warmupSeconds > 0) await measure(floorUrl, {}, plan.loadCpus, undefined, warmupSeconds);
  const floorRuns: LoadResult[] = [];
  const floorUsage: Usage[] = [];
  const refNginxRuns: LoadResult[] = [];
  const refNginxUsage: Usage[] = [];
  for (let i = 0; i < runs; i++) {
    const order = i % 2 === 0 ? ['floor', 'nginx'] : ['nginx', 'floor'];
    for (const name of order) {
      const m =
        name === 'floor'
          ? await measure(floorUrl, {}, plan.loadCpus, floor.pid, seconds)
          : await measure(proxyUrl, {}, plan.loadCpus, proxyPid, seconds);
      (name === 'floor' ? floorRuns : refNginxRuns).push(m.result);
      if (m.usage) (name === 'floor' ? floorUsage : refNginxUsage).push(m.usage);
    }
  }
  await stopProcess(floor);
  const nodeFloor = summarize(floorRuns, floorUsage);
  const refNginx = summarize(refNginxRuns, refNginxUsage);
  const floorRatio = ratio(nodeFloor.rps, refNginx.rps);
  const floorCpuRatio =
    nodeFloor.cpuUsPerRequest && refNginx.cpuUsPerRequest
      ? ratio(refNginx.cpuUsPerRequest, nodeFloor.cpuUsPerRequest)
      : null;
  doneSteps++;
  log(
    `[bench] bare Node proxy ${nodeFloor.rps.toLocaleString('en-US')} rps vs nginx ${refNginx.rps.toLocaleString('en-US')} rps: ratio ${floorRatio} (per CPU: ${floorCpuRatio ?? 'n/a'})`,
  );

  const rows: ScenarioRow[] = [];
  const fixedRate: unknown[] = [];
  for (const scenario of scenarios) {
    step(`${scenario.title}: starting gateway`);
    const gateway = await startGatewayProcess(scenario, ctx, plan.proxyCpus, keys.publicKeyPem);
    const nginxPort = scenario.nginx === 'cache' ? cachePort : proxyPort;
    const nginxMaster = scenario.nginx === 'cache' ? cache : proxy;
    const nginxPid = nginxMaster.pid ? firstChildPid(nginxMaster.pid) : undefined;
    try {
      await checkScenario(scenario, ctx, gateway.port, nginxPort);
      const headers = scenario.headers(ctx);
      const gwUrl = `http://127.0.0.1:${gateway.port}${scenario.path}`;
      const nginxUrl = `http://127.0.0.1:${nginxPort}${scenario.path}`;
      const gwHeaders = { ...headers, Host: scenario.host }; // wrk only replaces its own Host when spelled "Host"
      const sides = {
        gateway: {
          url: gwUrl,
          headers: gwHeaders,
          pid: gateway.child.pid,
          runs: [] as LoadResult[],
          usage: [] as Usage[],
        },
        nginx: { url: nginxUrl, headers, pid: nginxPid, runs: [] as LoadResult[], usage: [] as Usage[] },
      };
      // The warm-up also fills every URL of a cache scenario, so the measured runs are all HITs.
      const variants = scenario.pathVariants ? { pathVariants: scenario.pathVariants } : {};
      if (warmupSeconds > 0) {
        step(`${scenario.title}: warm-up`);
        await measure(gwUrl, gwHeaders, plan.loadCpus, undefined, warmupSeconds, variants);
        await measure(nginxUrl, headers, plan.loadCpus, undefined, warmupSeconds, variants);
      }
      for (let i = 0; i < runs; i++) {
        const order = i % 2 === 0 ? (['gateway', 'nginx'] as const) : (['nginx', 'gateway'] as const);
        for (const name of order) {
          step(`${scenario.title}: run ${i + 1}/${runs} ${name}`);
          const side = sides[name];
          const { result, usage } = await measure(
            side.url,
            side.headers,
            plan.loadCpus,
            side.pid,
            seconds,
            variants,
          );
          side.runs.push(result);
          if (usage) side.usage.push(usage);
        }
      }
      const gw = summarize(sides.gateway.runs, sides.gateway.usage);
      const ng = summarize(sides.nginx.runs, sides.nginx.usage);
      const row: ScenarioRow = {
        id: scenario.id,
        title: scenario.title,
        gateway: gw,
        nginx: ng,
        ...scenarioRatios(gw, ng, nodeFloor),
      };
      rows.push(row);
      doneSteps++;
      log(
        `[bench] ${scenario.title}: gateway ${gw.rps.toLocaleString('en-US')} rps, nginx ${ng.rps.toLocaleString('en-US')} rps, ÷ nginx ${row.rpsRatio} (per CPU ${row.cpuRatio ?? 'n/a'}), ÷ floor ${row.floorRatio} (per CPU ${row.floorCpuRatio ?? 'n/a'})`,
      );

      if (FIXED_RATE_SCENARIOS.includes(scenario.id)) {
        step(`${scenario.title}: fixed rate`);
        fixedRate.push(await fixedRateRun(scenario, row.gateway, sides, directUrl, plan.loadCpus));
        doneSteps++;
      }
    } finally {
      await stopProcess(gateway.child);
      const row = rows.find((r) => r.id === scenario.id);
      if (row) row.gatewayLogLines = readFileSync(gateway.logFile, 'utf8').split('\n').length - 1;
    }
  }
  const paired: PairedResult[] = [];
  for (const pair of pairs) {
    const find = (id: string) => [...scenarios, ...pairedOnly].find((s) => s.id === id)!;
    step(`paired: ${pair.variant} against ${pair.base}`);
    paired.push(
      await pairedComparison(pair, find(pair.base), find(pair.variant), ctx, plan, keys.publicKeyPem),
    );
    doneSteps++;
  }
  const http2 = await h2VersusH1(ctx, plan, keys.publicKeyPem);
  progress(doneSteps, totalSteps, 'done', startedAt);
  log('');

  const report = {
    at: new Date().toISOString(),
    mode: quick ? 'quick' : 'full',
    machine: machine(),
    cpu_plan: plan,
    versions: {
      node: process.version,
      nginx: versionOf('nginx', ['-v']),
      wrk: versionOf('wrk', ['-v']),
      h2load: versionOf('h2load', ['--version']),
      redis: versionOf('redis-server', ['--version']),
      git_commit: versionOf('git', ['-C', repo, 'rev-parse', '--short', 'HEAD']),
    },
    settings: {
      seconds,
      runs,
      warmup_seconds: warmupSeconds,
      connections,
      load_generator: 'wrk -t1 (one thread)',
      order: 'alternating per run: gateway, nginx / nginx, gateway / ...',
      figures: 'medians over runs; errors and non-2xx are totals',
    },
    direct,
    node_floor: {
      what: 'bare node:http + undici Pool proxy, no gateway code, same core as the proxies',
      node: nodeFloor,
      nginx: refNginx,
      rpsRatio: floorRatio,
      cpuRatio: floorCpuRatio,
    },
    scenarios: rows,
    ratios: Object.fromEntries(rows.map((r) => [r.id, r.rpsRatio])),
    cpu_ratios: Object.fromEntries(rows.map((r) => [r.id, r.cpuRatio])),
    floor_ratios: Object.fromEntries(rows.map((r) => [r.id, r.floorRatio])),
    floor_cpu_ratios: Object.fromEntries(rows.map((r) => [r.id, r.floorCpuRatio])),
    fixed_rate: fixedRate,
    paired,
    http2,
    other_benchmarks: latestOtherResults(),
    duration_seconds: Math.round((Date.now() - startedAt) / 1000),
  };

  const outDir = process.env['BENCH_OUT_DIR'] ?? path.join(repo, 'bench-results');
  mkdirSync(outDir, { recursive: true });
  const base = path.join(outDir, `bench-${report.mode}-${stamp}`);
  writeFileSync(`${base}.json`, `${JSON.stringify(report, null, 2)}\n`);
  const subtitle = `${report.machine.cpu_model}, ${report.machine.cores} cores; ${plan.note}; ${report.at}`;
  writeFileSync(`${base}.svg`, svgChart(rows, subtitle));

  const out = process.stdout;
  out.write(`\n## VantageEdge gateway vs nginx (${report.mode}, ${report.at})\n\n`);
  out.write(`Machine: ${subtitle}\n`);
  out.write(
    `Direct to origin: ${direct.rps.toLocaleString('en-US')} rps, p50 ${direct.p50Ms} ms, p99 ${direct.p99Ms} ms\n\n`,
  );
  out.write(
    `Floor of a Node proxy (node:http + undici, no gateway code): ${nodeFloor.rps.toLocaleString('en-US')} rps vs nginx ${refNginx.rps.toLocaleString('en-US')} rps, ratio ${floorRatio} (per CPU ${floorCpuRatio ?? 'n/a'}; ${nodeFloor.cpuUsPerRequest ?? 'n/a'} vs ${refNginx.cpuUsPerRequest ?? 'n/a'} CPU µs/request)\n\n`,
  );
  out.write(`${markdownTable(rows)}\n\n`);
  if (fixedRate.length > 0) {
    out.write(`${fixedRateTable(fixedRate as FixedRateResult[])}\n\n`);
  }
  out.write(
    'Ratios (gateway rps ÷ nginx rps, then ÷ the bare Node proxy; in brackets the same per CPU second used):\n',
  );
  for (const row of rows) {
    out.write(
      `  ${row.id.padEnd(12)} ${row.rpsRatio ?? 'n/a'}  (${row.cpuRatio ?? 'n/a'})   ÷ floor ${row.floorRatio ?? 'n/a'}  (${row.floorCpuRatio ?? 'n/a'})\n`,
    );
  }
  for (const pair of paired) {
    const p = pair.summary;
    out.write(
      p === null
        ? `\nPaired, ${pair.variant} against ${pair.base}: no usable pair\n`
        : `\nPaired (two gateways on one core, both loaded at once, ${pair.seconds_per_run} s runs)${pair.variant === APIKEY_TWIN.id ? ', control' : ''}, ${pair.variant} against ${pair.base}: ${p.variantUsPerRequest} vs ${p.baseUsPerRequest} CPU µs/request, ${pair.variant} ÷ ${pair.base} ${p.costRatio} (median of ${p.couples > 0 ? `${p.couples} couples of runs in both orientations` : `${p.pairs} runs`}, 95% interval ${p.costRatioCi95?.join('–') ?? 'n/a'}; runs one way round ${p.orientationRatios?.unswapped ?? 'n/a'}, the other ${p.orientationRatios?.swapped ?? 'n/a'}, range ${p.costRatioRange[0]}–${p.costRatioRange[1]})${pair.goal ? `; goal ≤ ${pair.goal.max_ratio}: ${pair.goal.verdict}` : ''}\n`,
    );
  }
  out.write('\nOther benchmarks (latest result files; run their make targets to refresh):\n');
  for (const other of report.other_benchmarks) {
    out.write(`  ${other.target.padEnd(24)} ${other.file ? `${other.file} (${other.at})` : 'not run yet'}\n`);
  }
  out.write(
    `\nJSON: ${path.relative(repo, base)}.json  SVG: ${path.relative(repo, base)}.svg  (${report.duration_seconds} s)\n`,
  );
}

interface PairedDefinition {
  variant: string;
  base: string;
  /** The goal: the variant's CPU per request at most this × the base's (null: no goal). */
  maxRatio: number | null;
}

interface PairedResult {
  base: string;
  variant: string;
  host: { base: string; variant: string };
  seconds_per_run: number;
  /** Gateway process pairs the runs were shared between (BENCH_PAIR_PROCESSES, at most one per couple). */
  process_pairs: number;
  runs: PairedRun[];
  summary: PairedSummary | null;
  goal: { max_ratio: number; verdict: ReturnType<typeof pairedVerdict> } | null;
}

/**
 * Two gateway processes, each serving both scenarios' tenants, share the proxy core, and two wrk
 * instances load them at once: the base's tenant on one, the variant's on the other, swapped every
 * run (so neither process's own luck, its memory layout say, favours one side). A run's figure for a
 * side is its process's CPU time (every thread, in ns) ÷ the requests that side answered. Both
 * processes take turns on the same core through the whole run, so whatever the machine does to that
 * core (a neighbour, a frequency change) lands on both alike; each pair's ratio compares the same
 * second on the same core. The runs are shared between BENCH_PAIR_PROCESSES such pairs of processes,
 * started one after the other. See docs/benchmarks.md, "Paired comparison".
 */
async function pairedComparison(
  definition: PairedDefinition,
  base: Scenario,
  variant: Scenario,
  ctx: ScenarioContext,
  plan: ReturnType<typeof planCpus>,
  clerkKey: string,
): Promise<PairedResult> {
  if (base.host === variant.host)
    throw new Error(`paired ${variant.id}/${base.id}: needs two tenants' hosts`);
  const serving = (n: number): Scenario => ({
    ...variant,
    id: `${variant.id}-vs-${base.id}-${n}`,
    snapshots: (c) => [...base.snapshots(c), ...variant.snapshots(c)],
  });
  const pairRuns: PairedRun[] = [];
  const blocks = pairedBlocks(pairCount, pairProcesses);
  for (const [block, runs] of blocks.entries())
    pairRuns.push(...(await pairedBlock(serving, runs, block, { base, variant, ctx, plan, clerkKey })));
  const summary = summarizePaired(pairRuns);
  const maxRatio = definition.maxRatio;
  return {
    base: base.id,
    variant: variant.id,
    host: { base: base.host, variant: variant.host },
    seconds_per_run: pairSeconds,
    process_pairs: blocks.length,
    runs: pairRuns.map((r) => ({
      baseUsPerRequest: round(r.baseUsPerRequest, 1),
      variantUsPerRequest: round(r.variantUsPerRequest, 1),
      processPair: r.processPair,
      swapped: r.swapped,
    })),
    summary,
    goal:
      maxRatio === null || summary === null
        ? null
        : { max_ratio: maxRatio, verdict: pairedVerdict(summary, maxRatio) },
  };
}

/** `runs` paired runs on a fresh pair of gateway processes (warmed up in both orientations first). */
async function pairedBlock(
  serving: (n: number) => Scenario,
  runs: number,
  block: number,
  { base, variant, ctx, plan, clerkKey }: PairedSides,
): Promise<PairedRun[]> {
  const gateways = [
    await startGatewayProcess(serving(2 * block + 1), ctx, plan.proxyCpus, clerkKey),
    await startGatewayProcess(serving(2 * block + 2), ctx, plan.proxyCpus, clerkKey),
  ];
  // SCHED_BATCH: a process woken by its load does not preempt the other, so each runs until it waits
  // or its time slice ends, and the two switch (and chill each other's caches) far less often.
  for (const gateway of gateways)
    execFileSync('chrt', ['--batch', '--all-tasks', '--pid', '0', String(gateway.child.pid)]);
  // Side 0 (base) on process `swapped ? 1 : 0`, side 1 (variant) on the other.
  const processOf = (side: number, swapped: boolean) => (side + (swapped ? 1 : 0)) % 2;
  const runBoth = (seconds: number, swapped: boolean) =>
    Promise.all(
      [base, variant].map((scenario, side) =>
        runWrk({
          url: `http://127.0.0.1:${gateways[processOf(side, swapped)]!.port}${scenario.path}`,
          headers: { ...scenario.headers(ctx), Host: scenario.host },
          connections,
          durationSeconds: seconds,
          cpus: plan.loadCpus,
        }),
      ),
    );
  try {
    if (warmupSeconds > 0) for (const swapped of [false, true]) await runBoth(warmupSeconds, swapped);
    const pairRuns: PairedRun[] = [];
    for (let i = 0; i < runs; i++) {
      const swapped = i % 2 === 1;
      const before = gateways.map((g) => processCpuNs(g.child.pid!));
      const results = await runBoth(pairSeconds, swapped);
      const after = gateways.map((g) => processCpuNs(g.child.pid!));
      const usPerRequest = results.map((result, side) => {
        if (result.errors + result.non2xx > 0) {
          throw new Error(
            `paired ${variant.id}/${base.id}: ${result.errors} errors, ${result.non2xx} non-2xx`,
          );
        }
        const at = processOf(side, swapped);
        return result.requests > 0 ? (after[at]! - before[at]!) / 1000 / result.requests : 0;
      });
      pairRuns.push({
        baseUsPerRequest: usPerRequest[0]!,
        variantUsPerRequest: usPerRequest[1]!,
        processPair: block,
        swapped,
      });
    }
    return pairRuns;
  } finally {
    for (const gateway of gateways) await stopProcess(gateway.child);
  }
}

interface PairedSides {
  base: Scenario;
  variant: Scenario;
  ctx: ScenarioContext;
  plan: ReturnType<typeof planCpus>;
  clerkKey: string;
}

interface FixedRateResult {
  scenario: string;
  target_rps: number;
  connections: number;
  pacing_delay_ms: number;
  direct: { rps: number; p50Ms: number; p99Ms: number };
  nginx: { rps: number; p50Ms: number; p99Ms: number };
  gateway: { rps: number; p50Ms: number; p99Ms: number };
  gateway_added: { p50Ms: number; p99Ms: number };
  nginx_added: { p50Ms: number; p99Ms: number };
}

/**
 * Latency at a fixed rate below saturation: FIXED_RATE_FRACTION × the gateway's measured max. wrk has
 * no constant-rate mode, so each connection waits PACING_DELAY_MS after every response and the
 * connection count is chosen so that connections / (delay + latency) ≈ the target rate.
 */
async function fixedRateRun(
  scenario: Scenario,
  gatewayMax: SideSummary,
  sides: Record<'gateway' | 'nginx', { url: string; headers: Record<string, string> }>,
  directUrl: string,
  cpus: string,
): Promise<FixedRateResult> {
  const target = Math.max(100, Math.round(gatewayMax.rps * FIXED_RATE_FRACTION));
  const conns = Math.max(1, Math.round((target * (PACING_DELAY_MS + 0.3)) / 1000));
  const opts = { connections: conns, delayMs: PACING_DELAY_MS };
  const pick = (r: LoadResult) => ({
    rps: Math.round(r.rps),
    p50Ms: r.latencyMs.p50,
    p99Ms: r.latencyMs.p99,
  });
  const direct = pick((await measure(directUrl, {}, cpus, undefined, seconds, opts)).result);
  const nginx = pick(
    (await measure(sides.nginx.url, sides.nginx.headers, cpus, undefined, seconds, opts)).result,
  );
  const gateway = pick(
    (await measure(sides.gateway.url, sides.gateway.headers, cpus, undefined, seconds, opts)).result,
  );
  return {
    scenario: scenario.id,
    target_rps: target,
    connections: conns,
    pacing_delay_ms: PACING_DELAY_MS,
    direct,
    nginx,
    gateway,
    gateway_added: {
      p50Ms: round(gateway.p50Ms - direct.p50Ms, 3),
      p99Ms: round(gateway.p99Ms - direct.p99Ms, 3),
    },
    nginx_added: { p50Ms: round(nginx.p50Ms - direct.p50Ms, 3), p99Ms: round(nginx.p99Ms - direct.p99Ms, 3) },
  };
}

function fixedRateTable(results: readonly FixedRateResult[]): string {
  const lines = [
    `Latency at a fixed rate (${FIXED_RATE_FRACTION * 100}% of the gateway's max; added = minus direct):`,
    '',
    '| scenario | target rps | achieved rps (direct / nginx / gw) | direct p50 / p99 ms | nginx added p50 / p99 ms | **gateway added p50 / p99 ms** |',
    '|---|---:|---|---|---|---|',
  ];
  for (const r of results) {
    lines.push(
      `| ${r.scenario} | ${r.target_rps.toLocaleString('en-US')} | ${r.direct.rps} / ${r.nginx.rps} / ${r.gateway.rps} | ${r.direct.p50Ms} / ${r.direct.p99Ms} | ${r.nginx_added.p50Ms} / ${r.nginx_added.p99Ms} | **${r.gateway_added.p50Ms} / ${r.gateway_added.p99Ms}** |`,
    );
  }
  return lines.join('\n');
}

/** Removes the rate-limit counters and cache entries this run wrote (its own prefix only). */
async function deleteRedisKeys(): Promise<void> {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1, lazyConnect: true });
  await redis.connect();
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${redisPrefix}*`, 'COUNT', 1000);
      if (keys.length > 0) await redis.unlink(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

/**
 * HTTP/2 against HTTP/1.1 through the same gateway (the public scenario, cleartext h2c on the plain
 * port), both sides driven by h2load so the ratio compares protocols, not load generators. Skipped
 * (null) when h2load is not installed or BENCH_H2=0.
 */
async function h2VersusH1(
  ctx: ScenarioContext,
  plan: { proxyCpus: string; loadCpus: string },
  clerkKey: string,
): Promise<Record<string, unknown> | null> {
  const scenario = SCENARIOS.find((s) => s.id === 'public');
  if (
    process.env['BENCH_H2'] === '0' ||
    scenario === undefined ||
    versionOf('h2load', ['--version']) === 'not installed'
  ) {
    log('[bench] h2 vs h1: skipped (h2load missing or BENCH_H2=0)');
    return null;
  }
  const gateway = await startGatewayProcess(scenario, ctx, plan.proxyCpus, clerkKey, { GATEWAY_H2C: 'true' });
  try {
    const url = `http://127.0.0.1:${gateway.port}${scenario.path}`;
    const requests = Number(process.env['BENCH_H2_REQUESTS'] ?? (quick ? 20_000 : 100_000));
    const common = {
      url,
      authority: scenario.host,
      requests,
      clients: connections,
      streams: 10,
      cpus: plan.loadCpus,
    };
    await runH2load({ ...common, requests: Math.min(requests, 10_000), h1: false });
    const results: { h2: H2loadResult[]; h1: H2loadResult[] } = { h2: [], h1: [] };
    for (let i = 0; i < runs; i++) {
      for (const h1 of i % 2 === 0 ? [false, true] : [true, false]) {
        const result = await runH2load({ ...common, h1 });
        (h1 ? results.h1 : results.h2).push(result);
      }
    }
    const medianOf = (list: H2loadResult[], pick: (r: H2loadResult) => number) => median(list.map(pick));
    const h2Rps = medianOf(results.h2, (r) => r.rps);
    const h1Rps = medianOf(results.h1, (r) => r.rps);
    log(
      `[bench] h2 vs h1 (public, h2load, ${connections} clients, 10 streams each for h2): h2 ${Math.round(h2Rps).toLocaleString('en-US')} rps, h1 ${Math.round(h1Rps).toLocaleString('en-US')} rps, ratio ${ratio(h2Rps, h1Rps)}`,
    );
    return {
      scenario: 'public',
      load_generator: 'h2load (h2c prior knowledge; --h1 for HTTP/1.1)',
      clients: connections,
      streams_per_client_h2: 10,
      requests_per_run: requests,
      h2: {
        rps: h2Rps,
        mean_ms: medianOf(results.h2, (r) => r.meanMs),
        failed: results.h2.reduce((n, r) => n + r.failed, 0),
      },
      h1: {
        rps: h1Rps,
        mean_ms: medianOf(results.h1, (r) => r.meanMs),
        failed: results.h1.reduce((n, r) => n + r.failed, 0),
      },
      rpsRatio: ratio(h2Rps, h1Rps),
    };
  } finally {
    await stopProcess(gateway.child);
  }
}

let exitCode = 0;
try {
  await main();
} catch (error) {
  log(`[bench] failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  exitCode = 1;
} finally {
  for (const child of children.reverse()) await stopProcess(child);
  rmSync(workDir, { recursive: true, force: true });
  await deleteRedisKeys().catch((error) => log(`[bench] Redis cleanup failed: ${String(error)}`));
}
process.exit(exitCode);
