import { TEST_INFRA } from '@vantageedge/shared/testing/infrastructure';
import { startTcpProxy, type TcpProxy } from '@vantageedge/shared/testing/tcp-proxy';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type ApiResponse,
  type ControlPlaneHarness,
  json,
  startControlPlane,
} from '../testing/control-plane-harness.js';

/**
 * PostgreSQL connections that die without a word (a NAT or firewall forgetting the flow, the server's
 * host gone): no FIN, no RST. A statement sent on one waited for the kernel's retransmission timeout
 * (about 15 minutes), the admin request with it; an idle pooled connection that died was found only by
 * the request that used it, which then hung the same way.
 */
const STATEMENT_DEADLINE_MS = 1_500;
let proxy: TcpProxy;
let cp: ControlPlaneHarness;

beforeAll(async () => {
  proxy = await startTcpProxy(TEST_INFRA.databaseUrl);
  cp = await startControlPlane({
    withReadSide: true,
    connectThrough: (url) => proxy.urlFor(url),
    poolSize: 4,
    poolWaitMs: 1_000,
    statementDeadlineMs: STATEMENT_DEADLINE_MS,
  });
});
afterEach(() => {
  proxy.stall(false);
});
afterAll(async () => {
  proxy?.stall(false);
  await cp?.close();
  await proxy?.close();
});

/** A request, and its answer once it has one. */
function sent(request: Promise<ApiResponse>): { answer: () => ApiResponse | undefined } {
  let answer: ApiResponse | undefined;
  void request.then((response) => {
    answer = response;
  });
  return { answer: () => answer };
}

async function tenantsCreated(name: string): Promise<number> {
  const events = await cp.allEvents();
  return events.filter(
    (event) => event.type === 'TenantCreated' && (event.data as { name: string }).name === name,
  ).length;
}

/** Sessions of the test database waiting for a lock while running `statement`. */
async function waitingOnLock(statement: string): Promise<number> {
  const { rows } = await cp.db.pool.query<{ waiting: number }>(
    `select count(*)::int as waiting from pg_stat_activity
      where datname = current_database() and wait_event_type = 'Lock' and query like $1`,
    [`%${statement}%`],
  );
  return rows[0]?.waiting ?? 0;
}

describe('a PostgreSQL connection that stops answering without a word', () => {
  it('a command whose append is in flight when PostgreSQL stalls answers 503 store_unavailable (outcome unknown); stored once; the next command succeeds after the stall', async () => {
    // Appends wait on the event-store position until the test lets them go: the command's is in flight.
    const gate = await cp.db.pool.connect();
    await gate.query('begin');
    await gate.query('select value from event_store_position for update');
    const create = () =>
      cp.request('POST', '/api/v1/tenants', {
        body: { name: 'in-flight', subdomain: 'in-flight-append' },
        headers: { 'idempotency-key': 'in-flight-append-1' },
      });
    const first = sent(create());
    await expect.poll(() => waitingOnLock('event_store_append'), { timeout: 10_000 }).toBe(1);
    proxy.stall(true);
    // PostgreSQL stores the append; its answer never arrives.
    await gate.query('commit');
    gate.release();

    await expect.poll(() => first.answer()?.status, { timeout: 20_000 }).toBe(503);
    const refused = first.answer() as ApiResponse;
    expect(refused.headers.get('retry-after')).toBe('2');
    expect(json(refused)['error']).toMatchObject({ code: 'store_unavailable' });
    expect(String((json(refused)['error'] as { message: string }).message)).toMatch(/Idempotency-Key/);

    proxy.stall(false);
    // PostgreSQL had stored it. Sent again with its key, it is never run twice (idempotency.ts: the key
    // stays in progress until its lock ends, then the retry finds the stored events).
    const retried = await create();
    expect(retried.status, JSON.stringify(retried.body)).toBe(409);
    expect(json(retried)['error']).toMatchObject({ code: 'conflict' });
    expect(await tenantsCreated('in-flight')).toBe(1);
    const next = await cp.request('POST', '/api/v1/tenants', {
      body: { name: 'after-stall', subdomain: 'after-stall' },
    });
    expect(next.status, JSON.stringify(next.body)).toBe(201);
  });

  it('pooled connections that died while idle: the next read and command are answered as usual, the command stored once', async () => {
    // Every connection of the pool is open and idle, then the route forgets them all (new ones pass).
    const connections = await Promise.all(Array.from({ length: 4 }, () => cp.pool.connect()));
    for (const connection of connections) connection.release();
    proxy.blackholeOpenConnections();

    const read = sent(cp.request('GET', '/api/v1/tenants'));
    await expect.poll(() => read.answer()?.status, { timeout: 20_000 }).toBe(200);

    const create = sent(
      cp.request('POST', '/api/v1/tenants', {
        body: { name: 'after-idle-loss', subdomain: 'after-idle-loss' },
      }),
    );
    await expect.poll(() => create.answer()?.status, { timeout: 20_000 }).toBe(201);
    expect(await tenantsCreated('after-idle-loss')).toBe(1);
  });
});
