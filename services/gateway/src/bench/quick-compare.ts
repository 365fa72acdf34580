import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import autocannon from 'autocannon';

/**
 * Quick local comparison (`make bench-gateway`): the same small origin hit directly, through nginx
 * (when installed) and through the gateway (public route, API-key route). The proxy under test is
 * pinned to CPU 1 (taskset) so its number is one core's; the origin and the load generator share CPU 0.
 * Results: bench-results/gateway-quick-compare.json.
 */
const DURATION_SECONDS = Number(process.env['BENCH_SECONDS'] ?? 10);
const CONNECTIONS = Number(process.env['BENCH_CONNECTIONS'] ?? 50);
const repo = new URL('../../../../', import.meta.url).pathname;

const ORIGIN_SOURCE = `
const http = require('node:http');
const body = Buffer.from(JSON.stringify({ ok: true, service: 'origin', padding: 'x'.repeat(200) }));
const server = http.createServer((req, res) => {
  req.resume();
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
  res.end(body);
});
server.keepAliveTimeout = 60000;
server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: server.address().port })));
`;

const children: ChildProcess[] = [];

function pinned(cpu: string, command: string, args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  const child = spawn('taskset', ['-c', cpu, command, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  return child;
}

function firstJsonLine(child: ChildProcess): Promise<{ port: number }> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.once('line', (line) => resolve(JSON.parse(line) as { port: number }));
    child.once('exit', (code) => reject(new Error(`process exited early (${code})`)));
  });
}

async function commandExists(command: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = spawn('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    probe.on('exit', (code) => resolve(code === 0));
  });
}

async function startNginx(originPort: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 've-nginx-'));
  const port = 20000 + Math.floor(Math.random() * 20000);
  for (const sub of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, sub));
  writeFileSync(
    join(dir, 'nginx.conf'),
    `worker_processes 1; daemon off; pid ${dir}/nginx.pid; error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  upstream origin { server 127.0.0.1:${originPort}; keepalive 128; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_set_header Host $host; proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }
  }
}
`,
  );
  pinned('1', 'nginx', ['-p', dir, '-c', join(dir, 'nginx.conf')]);
  await new Promise((resolve) => setTimeout(resolve, 500));
  return port;
}

async function run(name: string, url: string, headers: Record<string, string> = {}) {
  // Warm-up (pools, JIT), then the measured run.
  await autocannon({ url, connections: CONNECTIONS, duration: 2, headers });
  const result = await autocannon({ url, connections: CONNECTIONS, duration: DURATION_SECONDS, headers });
  const summary = {
    name,
    requests_per_second: Math.round(result.requests.average),
    latency_p50_ms: result.latency.p50,
    latency_p99_ms: result.latency.p99,
    non_2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
  };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  return summary;
}

try {
  const origin = pinned('0', process.execPath, ['-e', ORIGIN_SOURCE]);
  const originPort = (await firstJsonLine(origin)).port;
  const gatewayProcess = pinned(
    '1',
    join(repo, 'node_modules/.bin/tsx'),
    [join(repo, 'services/gateway/src/bench/gateway-process.ts')],
    {
      BENCH_ORIGIN_URL: `http://127.0.0.1:${originPort}`,
    },
  );
  const gatewayPort = (await firstJsonLine(gatewayProcess)).port;

  const results = [await run('direct origin', `http://127.0.0.1:${originPort}/public/x`)];
  if (await commandExists('nginx')) {
    const nginxPort = await startNginx(originPort);
    results.push(await run('nginx proxy (1 worker, CPU 1)', `http://127.0.0.1:${nginxPort}/public/x`));
  }
  const host = { host: 'bench.localhost' };
  results.push(await run('gateway public route (CPU 1)', `http://127.0.0.1:${gatewayPort}/public/x`, host));
  results.push(
    await run('gateway API-key route (CPU 1)', `http://127.0.0.1:${gatewayPort}/keyed/x`, {
      ...host,
      'x-api-key': 've_live_bench_key_000000000000000000000',
    }),
  );
  const nginx = results.find((r) => r.name.startsWith('nginx'));
  const gateway = results.find((r) => r.name.startsWith('gateway public'));
  const ratio =
    nginx && gateway
      ? Math.round((gateway.requests_per_second / nginx.requests_per_second) * 100) / 100
      : null;
  const report = {
    at: new Date().toISOString(),
    node: process.version,
    duration_seconds: DURATION_SECONDS,
    connections: CONNECTIONS,
    results,
    gateway_to_nginx_ratio: ratio,
  };
  mkdirSync(join(repo, 'bench-results'), { recursive: true });
  writeFileSync(
    join(repo, 'bench-results/gateway-quick-compare.json'),
    `${JSON.stringify(report, null, 2)}\n`,
  );
  process.stdout.write(`gateway / nginx throughput: ${ratio ?? 'n/a'}\n`);
} finally {
  for (const child of children) child.kill('SIGTERM');
}
