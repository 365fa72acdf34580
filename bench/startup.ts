import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TEST_INFRA, uniqueSuffix } from '@vantageedge/shared/testing/infrastructure';
import { createTestKafka } from '@vantageedge/shared/testing/kafka';
import { logLevel } from 'kafkajs';

/**
 * `make bench-startup`: the gateway's cold start and memory, run through tsx (TypeScript compiled at
 * load) vs the compiled bundle of `make build` (dist/). Per run: time from spawn to /healthz (listening)
 * and to /readyz (caught up with an empty snapshot topic), the CPU time the process used until then
 * (user + system: what start-up costs, independent of how busy the machine is), and its RSS. Runs
 * alternate between the two modes; medians of BENCH_STARTUP_RUNS (default 5) each. Needs `make build`
 * and the local Redis and Kafka. JSON: bench-results/startup-<timestamp>.json.
 */
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const RUNS = Number(process.env['BENCH_STARTUP_RUNS'] ?? 5);
const topic = `ve-test-startup-${uniqueSuffix()}`;

const MODES = {
  tsx: ['--import', 'tsx', 'services/gateway/src/main.ts'],
  compiled: ['dist/services/gateway/main.js'],
} as const;
type Mode = keyof typeof MODES;

interface Run {
  healthz_ms: number;
  readyz_ms: number;
  cpu_ms: number;
  rss_mb: number;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

async function until(url: string, started: number, child: ChildProcess): Promise<number> {
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`gateway exited with ${child.exitCode} before ${url} answered`);
    try {
      if ((await fetch(url)).ok) return performance.now() - started;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** utime + stime of a process in ms (/proc/<pid>/stat fields 14 and 15, in clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function rssMb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmRSS:'));
  return Number(line?.match(/(\d+)/)?.[1] ?? 0) / 1024;
}

async function runOnce(mode: Mode): Promise<Run> {
  const [port, adminPort] = await Promise.all([freePort(), freePort()]);
  const started = performance.now();
  const child = spawn(process.execPath, [...MODES[mode]], {
    cwd: repo,
    env: {
      ...process.env,
      NODE_OPTIONS: '--enable-source-maps --disable-warning=TimeoutNegativeWarning',
      API_KEY_PEPPER: 'startup-bench-pepper-0123456789abcdefghijklmnop',
      GATEWAY_PORT: String(port),
      GATEWAY_ADMIN_PORT: String(adminPort),
      GATEWAY_HOST: '127.0.0.1',
      REDIS_URL: TEST_INFRA.redisUrl,
      KAFKA_BROKERS: TEST_INFRA.kafkaBrokers.join(','),
      SNAPSHOT_TOPIC: topic,
      SNAPSHOT_TOPIC_PARTITIONS: '1',
      LOG_LEVEL: 'warn',
    },
    stdio: 'ignore',
  });
  try {
    const healthz = await until(`http://127.0.0.1:${adminPort}/healthz`, started, child);
    const readyz = await until(`http://127.0.0.1:${adminPort}/readyz`, started, child);
    return {
      healthz_ms: Math.round(healthz),
      readyz_ms: Math.round(readyz),
      cpu_ms: cpuMs(child.pid!),
      rss_mb: Math.round(rssMb(child.pid!)),
    };
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
  }
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;

const runs: Record<Mode, Run[]> = { tsx: [], compiled: [] };
for (let index = 0; index < RUNS; index += 1) {
  for (const mode of Object.keys(MODES) as Mode[]) runs[mode].push(await runOnce(mode));
}
const summary = Object.fromEntries(
  (Object.keys(MODES) as Mode[]).map((mode) => [
    mode,
    {
      healthz_ms: median(runs[mode].map((r) => r.healthz_ms)),
      readyz_ms: median(runs[mode].map((r) => r.readyz_ms)),
      cpu_ms: median(runs[mode].map((r) => r.cpu_ms)),
      rss_mb: median(runs[mode].map((r) => r.rss_mb)),
    },
  ]),
);
const result = { node: process.version, runs_per_mode: RUNS, summary, runs };
mkdirSync(path.join(repo, 'bench-results'), { recursive: true });
const file = path.join(
  repo,
  'bench-results',
  `startup-${new Date().toISOString().replaceAll(':', '-')}.json`,
);
writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
console.log(JSON.stringify(summary, null, 2));
console.log(`written ${path.relative(repo, file)}`);

const admin = createTestKafka({ level: logLevel.NOTHING }).admin();
await admin.connect();
await admin.deleteTopics({ topics: [topic] }).catch(() => {});
await admin.disconnect();
