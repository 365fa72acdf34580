import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ApiResponse,
  type ControlPlaneHarness,
  json,
  startControlPlane,
} from '../testing/control-plane-harness.js';
import { resentAfter503, tenantWithRouteHistory } from '../testing/route-history.js';
import { createConfigReadBudget, useConfigReadBudget } from './config-read-budget.js';

/**
 * Through the admin API with CONTROL_PLANE_CONFIG_READ_MAX_EVENTS at 10: a config read (…/config,
 * …/document, …/diff, explain) that would read more of the event log answers 503 read_limit_exceeded
 * naming the limit, with Retry-After; the same request sent again goes on from where it stopped and
 * answers the exact config. Its reads of the event store are cut off after
 * CONTROL_PLANE_READ_STATEMENT_TIMEOUT_MS (here 300 ms) as the other admin reads: 503 read_timeout.
 */

const LIMIT = 10;
const READ_TIMEOUT_MS = 300;
let h: ControlPlaneHarness;

const routesOf = (response: ApiResponse) =>
  (json(response)['routes'] as Array<Record<string, unknown>>).map((r) => r['methods']);

/** A tenant whose route changed 30 times: no read has folded any of it yet. */
const tenantWithHistory = (subdomain: string) => tenantWithRouteHistory(h, subdomain);

beforeAll(async () => {
  h = await startControlPlane({
    withReadSide: true,
    configReadMaxEvents: LIMIT,
    readStatementTimeoutMs: READ_TIMEOUT_MS,
  });
}, 60_000);

afterAll(async () => {
  await h?.close();
});

describe('a config read over CONTROL_PLANE_CONFIG_READ_MAX_EVENTS', () => {
  it('answers 503 read_limit_exceeded naming the limit, then goes on where it stopped', async () => {
    const { id, changes } = await tenantWithHistory('limit-config');
    const at = changes[24]!;
    const { response, refusals } = await resentAfter503(() =>
      h.request('GET', `/api/v1/tenants/${id}/config?at_position=${at.position}`),
    );
    expect(refusals.length).toBeGreaterThan(0);
    for (const refusal of refusals) {
      expect(refusal.status).toBe(503);
      expect(refusal.headers.get('retry-after')).toBe('1');
      expect(json(refusal)['error']).toMatchObject({
        code: 'read_limit_exceeded',
        details: [{ field: 'config_read_max_events', issue: `at most ${LIMIT} events read per config` }],
      });
    }
    expect(response.status).toBe(200);
    expect(routesOf(response)).toEqual([at.methods]);
  }, 60_000);

  it('bounds the document, both sides of a diff and explain alike', async () => {
    const [forDocument, forDiff, forExplain] = [
      await tenantWithHistory('limit-document'),
      await tenantWithHistory('limit-diff'),
      await tenantWithHistory('limit-explain'),
    ];
    const document = await resentAfter503(() =>
      h.request(
        'GET',
        `/api/v1/tenants/${forDocument.id}/config/document?at_position=${forDocument.changes[14]!.position}`,
      ),
    );
    expect(json(document.refusals[0]!)['error']).toMatchObject({ code: 'read_limit_exceeded' });
    expect(document.response.status).toBe(200);

    const { changes } = forDiff;
    const diff = await resentAfter503(() =>
      h.request(
        'GET',
        `/api/v1/tenants/${forDiff.id}/config/diff?from=${changes[4]!.position}&to=${changes[17]!.position}`,
      ),
    );
    expect(json(diff.refusals[0]!)['error']).toMatchObject({ code: 'read_limit_exceeded' });
    expect(diff.response.status).toBe(200);
    expect(JSON.stringify(json(diff.response)['changes'])).toContain('methods');

    const at = forExplain.changes[19]!;
    const explained = await resentAfter503(() =>
      h.request('POST', `/api/v1/tenants/${forExplain.id}/explain`, {
        body: {
          method: at.methods[0],
          host: `${forExplain.subdomain}.vantageedge.dev`,
          path: '/users/1',
          at_position: at.position,
        },
      }),
    );
    expect(json(explained.refusals[0]!)['error']).toMatchObject({ code: 'read_limit_exceeded' });
    expect(explained.response.status).toBe(200);
    expect(json(explained.response)['version']).toBe(at.position);
  }, 120_000);

  it('bounds a rollback’s preview and the rollback alike, which then restore the exact config', async () => {
    const { id, changes } = await tenantWithHistory('limit-rollback');
    const to = changes[12]!;
    const rollback = (dryRun: boolean) =>
      resentAfter503(() =>
        h.request('POST', `/api/v1/tenants/${id}/config/rollback`, {
          body: { to_position: to.position, dry_run: dryRun },
        }),
      );
    const preview = await rollback(true);
    expect(preview.refusals.length).toBeGreaterThan(0);
    for (const refusal of preview.refusals) {
      expect(refusal.headers.get('retry-after')).toBe('1');
      expect(json(refusal)['error']).toMatchObject({
        code: 'read_limit_exceeded',
        details: [{ field: 'config_read_max_events', issue: `at most ${LIMIT} events read per config` }],
      });
    }
    expect(preview.response.status).toBe(200);
    const changed = json(preview.response)['changes'] as Array<Record<string, unknown>>;
    expect(changed.map((change) => change['change'])).toEqual(['changed']);

    const done = await rollback(false);
    expect(done.response.status).toBe(200);
    expect(json(done.response)['changes']).toEqual(changed);
    const now = await resentAfter503(() => h.request('GET', `/api/v1/tenants/${id}/config`));
    expect(routesOf(now.response)).toEqual([to.methods]);
  }, 120_000);

  it('refuses a read of a tenant whose config read budget is spent before folding anything', async () => {
    const { id, changes } = await tenantWithHistory('limit-spent-budget');
    useConfigReadBudget(h.store, createConfigReadBudget({ bytesPerMinute: 1, now: () => 0 }));
    try {
      // The tenant's one read of the minute (its newest config, folded by its commands already).
      const newest = await resentAfter503(() => h.request('GET', `/api/v1/tenants/${id}/config`));
      expect(newest.response.status).toBe(200);
      // A far position of its history: refused for the budget, not after folding up to the read limit.
      const far = await h.request('GET', `/api/v1/tenants/${id}/config?at_position=${changes[20]!.position}`);
      expect(far.status, JSON.stringify(far.body)).toBe(429);
      expect(json(far)['error']).toMatchObject({
        code: 'admin_rate_limited',
        details: [{ field: 'tenant_config_read_bytes_per_minute' }],
      });
    } finally {
      useConfigReadBudget(h.store, createConfigReadBudget());
    }
  }, 60_000);

  it('cuts its reads of the event store off after the read statement timeout: 503 read_timeout', async () => {
    const { id, subdomain, changes } = await tenantWithHistory('limit-timeout');
    const at = changes[5]!;
    // The events table locked: a read of it waits for the lock, past any timeout. The lock is let go
    // after 20 s at the latest, so that a read that is not cut off answers (and fails the test).
    const locker = new pg.Client({ connectionString: h.db.url });
    await locker.connect();
    await locker.query('begin; lock table event_store_events in access exclusive mode');
    const unlock = setTimeout(() => void locker.query('rollback'), 20_000);
    let config: ApiResponse;
    let explained: ApiResponse;
    try {
      config = await h.request('GET', `/api/v1/tenants/${id}/config?at_position=${at.position}`);
      explained = await h.request('POST', `/api/v1/tenants/${id}/explain`, {
        body: {
          method: 'GET',
          host: `${subdomain}.vantageedge.dev`,
          path: '/users/1',
          at_position: at.position,
        },
      });
    } finally {
      clearTimeout(unlock);
      await locker.query('rollback');
      await locker.end();
    }
    for (const response of [config, explained]) {
      expect(response.status).toBe(503);
      expect(response.headers.get('retry-after')).toBe('1');
      expect(json(response)['error']).toMatchObject({ code: 'read_timeout' });
    }
    // The lock gone, the same request answers the exact config.
    const again = await resentAfter503(() =>
      h.request('GET', `/api/v1/tenants/${id}/config?at_position=${at.position}`),
    );
    expect(again.response.status).toBe(200);
    expect(routesOf(again.response)).toEqual([at.methods]);
  }, 120_000);
});
