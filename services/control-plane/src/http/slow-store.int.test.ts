import { TEST_INFRA } from '@vantageedge/shared/testing/infrastructure';
import { startTcpProxy, type TcpProxy } from '@vantageedge/shared/testing/tcp-proxy';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlPlaneHarness, json, startControlPlane } from '../testing/control-plane-harness.js';

/**
 * PostgreSQL that answers every statement, seconds late (an overloaded server, a congested link): the
 * admin API answers within a bound, a command it refuses stores nothing, and sent again with its
 * Idempotency-Key once PostgreSQL is fast again it is stored once.
 */
let proxy: TcpProxy;
let cp: ControlPlaneHarness;

beforeAll(async () => {
  proxy = await startTcpProxy(TEST_INFRA.databaseUrl);
  cp = await startControlPlane({ withReadSide: true, connectThrough: (url) => proxy.urlFor(url) });
});
afterAll(async () => {
  proxy?.delayAnswers(0);
  await cp?.close();
  await proxy?.close();
});

describe('PostgreSQL answering every statement 5 s late', () => {
  it('/readyz answers 503 at once, a command is answered within a minute and stored once, however it was answered', async () => {
    const created = () =>
      cp.request('POST', '/api/v1/tenants', {
        body: { name: 'slow-store', subdomain: 'slow-store' },
        headers: { 'idempotency-key': 'slow-store-create' },
      });
    const stored = async () =>
      (await cp.allEvents()).filter(
        (event) => event.type === 'TenantCreated' && (event.data as { name: string }).name === 'slow-store',
      );
    proxy.delayAnswers(5_000);
    const started = Date.now();
    const [first, ready] = await Promise.all([created(), cp.request('GET', '/readyz')]);
    expect(ready.status).toBe(503);
    expect(Date.now() - started).toBeLessThan(60_000);
    expect([201, 503], JSON.stringify(first.body)).toContain(first.status);
    if (first.status === 503) expect(json(first)['error']).toMatchObject({ code: 'store_unavailable' });

    proxy.delayAnswers(0);
    const again = await created();
    expect([200, 201], JSON.stringify(again.body)).toContain(again.status);
    expect(await stored()).toHaveLength(1);
  }, 120_000);
});
