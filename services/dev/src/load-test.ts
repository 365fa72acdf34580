import '@vantageedge/shared/settings/env-file';
import type { EventEmitter } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { gatewaySettings } from '@vantageedge/gateway/settings';
import { loadSettingsOrExit } from '@vantageedge/shared/settings/load-settings';
import autocannonModule from 'autocannon';
import { loadOrCreateDevKeys } from './dev-keys.js';
import { DEV_DEFAULTS, devDataDir, REPO_ROOT } from './dev-settings.js';
import { defaultDevUser, signDevToken } from './dev-token.js';
import { DEMO_API_KEY } from './seed.js';

/**
 * `make load-test`: autocannon against a running `make dev` through the demo routes (public, cached,
 * API key, JWT with its rate limit), a progress line per second, and a summary: requests/s, latency
 * p50/p95/p99, status mix, 429s and cache hits. JSON goes to bench-results/load-test-<time>.json.
 * Env: GATEWAY_URL (default http://127.0.0.1:$GATEWAY_PORT), DEMO_HOST (demo.localhost), TOKEN,
 * GATEWAY_MAX_REQUESTS_PER_CONNECTION (the gateway's, 1000).
 */

interface LoadRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
}
interface LoadClient extends EventEmitter {}
type Autocannon = (
  options: {
    url: string;
    connections: number;
    duration: number;
    reconnectRate: number;
    requests: LoadRequest[];
    setupClient: (client: LoadClient) => void;
  },
  done: (error: Error | null, result: { errors: number; timeouts: number }) => void,
) => EventEmitter & { stop(): void };
const autocannon = autocannonModule as unknown as Autocannon;

export interface LoadSummary {
  url: string;
  duration_seconds: number;
  connections: number;
  requests: number;
  requests_per_second: number;
  latency_ms: { p50: number; p95: number; p99: number; max: number };
  status: Record<string, number>;
  rate_limited_429: number;
  cache: { hit: number; miss: number; other: number };
  errors: number;
  timeouts: number;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  const index = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return Math.round(sorted[Math.max(0, index)]! * 100) / 100;
}

function reachable(url: string, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(`${url}/api/public/status`, { headers: { host }, timeout: 2_000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
  });
}

export async function runLoadTest(options: {
  url: string;
  host: string;
  token: string;
  durationSeconds: number;
  connections: number;
  /**
   * The requests the gateway answers on one connection (GATEWAY_MAX_REQUESTS_PER_CONNECTION; 0: no
   * limit). autocannon ignores the last answer's `Connection: close` and node answers 503 to whatever
   * comes after it on that connection, so each connection is replaced once it made that many requests
   * (autocannon leaves the answer it replaces a connection on out of its counts: one in that many).
   */
  requestsPerConnection: number;
  onTick?: (second: number, requestsThisSecond: number) => void;
}): Promise<LoadSummary> {
  const host = { host: options.host };
  const requests: LoadRequest[] = [
    { method: 'GET', path: '/api/public/posts', headers: host },
    // Twenty cached posts: after the first pass every request is a cache HIT.
    ...Array.from({ length: 20 }, (_, i) => ({ method: 'GET', path: `/api/posts/${i + 1}`, headers: host })),
    { method: 'GET', path: '/api/admin/users', headers: { ...host, 'x-api-key': DEMO_API_KEY } },
    { method: 'GET', path: '/api/users/1', headers: { ...host, authorization: `Bearer ${options.token}` } },
  ];
  const latencies: number[] = [];
  const status: Record<string, number> = {};
  const cache = { hit: 0, miss: 0, other: 0 };
  let second = 0;
  const result = await new Promise<{ errors: number; timeouts: number }>((resolve, reject) => {
    const instance = autocannon(
      {
        url: options.url,
        connections: options.connections,
        duration: options.durationSeconds,
        reconnectRate: options.requestsPerConnection,
        requests,
        setupClient(client) {
          client.on('headers', (parsed: { headers: string[] }) => {
            const raw = parsed.headers;
            for (let i = 0; i < raw.length; i += 2) {
              if (raw[i]!.toLowerCase() !== 'x-cache') continue;
              const value = raw[i + 1]!.toUpperCase();
              if (value === 'HIT') cache.hit++;
              else if (value === 'MISS') cache.miss++;
              else cache.other++;
            }
          });
        },
      },
      (error, res) => (error ? reject(error) : resolve(res)),
    );
    instance.on('response', (_client: unknown, statusCode: number, _bytes: number, ms: number) => {
      latencies.push(ms);
      status[String(statusCode)] = (status[String(statusCode)] ?? 0) + 1;
    });
    instance.on('tick', ({ counter }: { counter: number }) => {
      second++;
      options.onTick?.(second, counter);
    });
  });
  const sorted = Float64Array.from(latencies).sort();
  const total = latencies.length;
  return {
    url: options.url,
    duration_seconds: options.durationSeconds,
    connections: options.connections,
    requests: total,
    requests_per_second: Math.round(total / options.durationSeconds),
    latency_ms: {
      p50: percentile(sorted, 50),
      p95: percentile(sorted, 95),
      p99: percentile(sorted, 99),
      max: percentile(sorted, 100),
    },
    status,
    rate_limited_429: status['429'] ?? 0,
    cache,
    errors: result.errors,
    timeouts: result.timeouts,
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { duration: { type: 'string' }, connections: { type: 'string' } },
  });
  const url =
    process.env['GATEWAY_URL'] ||
    `http://127.0.0.1:${process.env['GATEWAY_PORT'] || DEV_DEFAULTS.GATEWAY_PORT}`;
  const host = process.env['DEMO_HOST'] || 'demo.localhost';
  if (!(await reachable(url, host))) {
    process.stderr.write(
      `load-test: ${url} (Host: ${host}) does not answer /api/public/status; start make dev first\n`,
    );
    process.exit(1);
  }
  const token =
    process.env['TOKEN'] ||
    (await signDevToken(await loadOrCreateDevKeys(devDataDir(process.env)), {
      userId: defaultDevUser(process.env),
    }));
  const { GATEWAY_MAX_REQUESTS_PER_CONNECTION: requestsPerConnection } = loadSettingsOrExit(
    'load-test',
    { GATEWAY_MAX_REQUESTS_PER_CONNECTION: gatewaySettings.GATEWAY_MAX_REQUESTS_PER_CONNECTION },
    process.env,
  );
  const durationSeconds = Number(values.duration ?? 10);
  const connections = Number(values.connections ?? 20);
  process.stdout.write(
    `load test: ${url} (Host: ${host}), ${connections} connections, ${durationSeconds} s, demo routes: public, cached posts, API key, JWT (rate limited)\n`,
  );
  const summary = await runLoadTest({
    url,
    host,
    token,
    durationSeconds,
    connections,
    requestsPerConnection,
    onTick: (second, count) => {
      if (second > durationSeconds) return;
      const done = second;
      const bar = '#'.repeat(Math.round((done / durationSeconds) * 30)).padEnd(30, '.');
      process.stdout.write(
        `\r  [${bar}] ${done}/${durationSeconds} s  ${count.toLocaleString('en')} req/s   `,
      );
    },
  });
  const line = (label: string, value: string) => process.stdout.write(`  ${label.padEnd(16)}${value}\n`);
  process.stdout.write('\n\nsummary\n');
  line(
    'requests',
    `${summary.requests.toLocaleString('en')} (${summary.requests_per_second.toLocaleString('en')} req/s)`,
  );
  line(
    'latency',
    `p50 ${summary.latency_ms.p50} ms · p95 ${summary.latency_ms.p95} ms · p99 ${summary.latency_ms.p99} ms · max ${summary.latency_ms.max} ms`,
  );
  line(
    'status',
    Object.entries(summary.status)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([code, count]) => `${code} × ${count.toLocaleString('en')}`)
      .join(' · '),
  );
  line(
    'rate limited',
    `${summary.rate_limited_429.toLocaleString('en')} × 429 (/api/users/*: burst 100, then 1 request/s per user)`,
  );
  const cached = summary.cache.hit + summary.cache.miss;
  line(
    'cache',
    `${summary.cache.hit.toLocaleString('en')} HIT · ${summary.cache.miss.toLocaleString('en')} MISS${
      cached ? ` (hit ratio ${((summary.cache.hit / cached) * 100).toFixed(1)} %)` : ''
    }`,
  );
  line('errors', `${summary.errors} connection errors · ${summary.timeouts} timeouts`);
  const dir = path.join(REPO_ROOT, 'bench-results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `load-test-${new Date().toISOString().replaceAll(':', '-')}.json`);
  writeFileSync(file, `${JSON.stringify(summary, null, 2)}\n`);
  process.stdout.write(`  results         ${path.relative(process.cwd(), file)}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  await main();
}
