import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type ControlPlaneHarness, json, startControlPlane } from '../testing/control-plane-harness.js';

/**
 * Regression: GET /readyz needs no credentials and ran its PostgreSQL checks (a `select 1` and the event
 * store's head position) for every request, on the pool the admin API's commands and queries share: any
 * client flooding it held the pool's connections and every tenant's admin requests queued behind them.
 */
let cp: ControlPlaneHarness;
beforeAll(async () => {
  cp = await startControlPlane();
});
afterAll(async () => {
  vi.restoreAllMocks();
  await cp?.close();
});

describe('GET /readyz under a flood', () => {
  it('many concurrent probes share the checks instead of each querying PostgreSQL', async () => {
    const queries = vi.spyOn(cp.db.pool, 'query');
    const heads = vi.spyOn(cp.store, 'headPosition');
    const answers = await Promise.all(
      Array.from({ length: 50 }, () => cp.request('GET', '/readyz', { token: null })),
    );
    for (const answer of answers) {
      expect(answer.status).toBe(200);
      expect(json(answer)).toMatchObject({ status: 'ready' });
    }
    expect(queries.mock.calls.length + heads.mock.calls.length).toBeLessThanOrEqual(10);
  });
});
