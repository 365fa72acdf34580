import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ENTRY_POINTS,
  eventually,
  freePort,
  type ServiceProcess,
  startService,
  stopAllServices,
  TestSystem,
  waitForHttp,
} from './harness.js';

/**
 * SIGTERM on the control plane, through real processes: a command in flight finishes (its events are
 * appended and its answer sent) before the process exits 0. Regression test: a client that never
 * finished sending its request body kept the old control plane alive for node's request timeout
 * (5 minutes); now CONTROL_PLANE_SHUTDOWN_TIMEOUT_SECONDS bounds the wait. Regression test: a command
 * whose events were stored but which waited for its rollout (`?wait_for_rollout=`, up to 60 s) past that
 * timeout had its connection cut, so its client saw a failure for a change that was made (and a retry
 * of a non-idempotent command, a new API key, made it twice); now a stop ends rollout waits at once.
 * Regression test: the listener closed at SIGTERM, so until a load balancer noticed, its probes and the
 * admin clients it still sent here met refused connections; now /readyz answers 503 at once and the
 * admin API keeps serving for CONTROL_PLANE_DRAIN_SECONDS, each answer closing its connection.
 */
let system: TestSystem;

async function startControlPlane(
  env: Record<string, string> = {},
): Promise<{ cp: ServiceProcess; url: string }> {
  const port = await freePort();
  const cp = startService('control-plane', ENTRY_POINTS.controlPlane, {
    ...system.commonEnv(),
    CONTROL_PLANE_PORT: String(port),
    CONTROL_PLANE_HOST: '127.0.0.1',
    CONTROL_PLANE_METRICS_PORT: '0',
    ...env,
  });
  system.services.push(cp);
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(cp, `${url}/readyz`);
  return { cp, url };
}

async function exitCode(service: ServiceProcess, timeoutMs: number): Promise<number | null> {
  await eventually(`${service.name} exits`, async () => service.exited(), { timeoutMs });
  return service.child.exitCode;
}

async function eventCount(): Promise<number> {
  const { rows } = await system.database.pool.query<{ count: string }>(
    'select count(*) from event_store_events',
  );
  return Number(rows[0]?.count ?? 0);
}

/** A JSON POST on a keep-alive agent: its status, and the `Connection` its answer says. */
function postOverKeepAlive(
  url: string,
  pathname: string,
  token: string,
  body: unknown,
): Promise<{ status: number; connection: string | undefined }> {
  const agent = new http.Agent({ keepAlive: true });
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${url}${pathname}`,
      {
        method: 'POST',
        agent,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      },
      (res) => {
        res.resume();
        res.once('end', () => {
          agent.destroy();
          resolve({ status: res.statusCode ?? 0, connection: res.headers.connection });
        });
      },
    );
    req.once('error', reject);
    req.end(JSON.stringify(body));
  });
}

beforeAll(async () => {
  system = await TestSystem.create();
}, 120_000);

afterAll(async () => {
  await system?.close();
  await stopAllServices();
}, 60_000);

describe('SIGTERM on the control plane', () => {
  it('a command in flight finishes and is answered, then the process exits 0', async () => {
    const { cp, url } = await startControlPlane();
    system.controlPlaneUrl = url;
    const before = await eventCount();
    // wait_for_rollout holds the answer after the events are appended (no gateway will report).
    const answer = system.admin('POST', '/api/v1/tenants?wait_for_rollout=3s', {
      body: { name: 'Shutdown Corp', subdomain: 'shutdown-corp' },
    });
    await eventually('the command appended its event', async () => (await eventCount()) > before, {
      timeoutMs: 20_000,
    });

    cp.child.kill('SIGTERM');
    const response = await answer;
    expect(response.status, cp.tail()).toBe(202);
    expect((response.body['resource'] as { subdomain?: string }).subdomain).toBe('shutdown-corp');
    expect(await exitCode(cp, 20_000), cp.tail()).toBe(0);
  });

  it('a command waiting for its rollout longer than the shutdown timeout is answered at once, then the process exits 0', async () => {
    const { cp, url } = await startControlPlane({ CONTROL_PLANE_SHUTDOWN_TIMEOUT_SECONDS: '2' });
    system.controlPlaneUrl = url;
    const before = await eventCount();
    // No gateway reports, so the wait would last its whole 30 s: past the 2 s the stop gives a request.
    const answer = system
      .admin('POST', '/api/v1/tenants?wait_for_rollout=30s', {
        body: { name: 'Rollout Wait Corp', subdomain: 'rollout-wait-corp' },
      })
      .catch((error: Error) => ({ status: 0, body: { error: error.message } }) as const);
    await eventually('the command appended its event', async () => (await eventCount()) > before, {
      timeoutMs: 20_000,
    });

    cp.child.kill('SIGTERM');
    const response = await answer;
    // Its events are stored: the client is told so (202, the rollout still pending), never cut off.
    expect([response.status, response.body], cp.tail()).toMatchObject([
      202,
      { resource: { subdomain: 'rollout-wait-corp' } },
    ]);
    expect(await exitCode(cp, 20_000), cp.tail()).toBe(0);
    expect(cp.tail()).not.toContain('shutdown timeout: closed connections');
  });

  it('answers 503 on /readyz at once and keeps serving for the drain period, each answer closing its connection, then exits 0', async () => {
    const { cp, url } = await startControlPlane({ CONTROL_PLANE_DRAIN_SECONDS: '3' });
    system.controlPlaneUrl = url;
    cp.child.kill('SIGTERM');
    await cp.waitForLine('"message":"stopping"', 10_000);

    // A load balancer still sending here while it takes the replica out: probes see it leaving, and an
    // admin client reaching it meanwhile is served (not refused) and told to reconnect elsewhere.
    const ready = await fetch(`${url}/readyz`);
    expect([ready.status, await ready.json()], cp.tail()).toEqual([
      503,
      { status: 'not_ready', reason: 'shutting down', checks: {} },
    ]);
    const during = await postOverKeepAlive(url, '/api/v1/tenants', await system.token(), {
      name: 'Drain Corp',
      subdomain: 'drain-corp',
    });
    expect(during, cp.tail()).toEqual({ status: 201, connection: 'close' });
    expect(await exitCode(cp, 20_000), cp.tail()).toBe(0);
  });

  it('a client that never finishes its request is cut at the shutdown timeout, and the process exits 0', async () => {
    const { cp, url } = await startControlPlane({ CONTROL_PLANE_SHUTDOWN_TIMEOUT_SECONDS: '1' });
    const { port } = new URL(url);
    const socket = net.connect(Number(port), '127.0.0.1');
    socket.on('error', () => {});
    socket.resume(); // read what it answers, so the socket sees the server's end
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    // Authenticated, so the request really is in flight: the body parser waits for the 500 bytes.
    const token = await system.token();
    socket.write(
      `POST /api/v1/tenants HTTP/1.1\r\nHost: cp\r\nAuthorization: Bearer ${token}\r\n` +
        'Content-Type: application/json\r\nContent-Length: 500\r\n\r\n{"na',
    );
    // Let the server take the request in before the signal.
    await new Promise((resolve) => setTimeout(resolve, 300));

    cp.child.kill('SIGTERM');
    expect(await exitCode(cp, 20_000), cp.tail()).toBe(0);
    await closed;
  });
});
