import type { RecordedEvent } from '@vantageedge/shared/event-store/port';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ApiResponse,
  type ControlPlaneHarness,
  json,
  startControlPlane,
} from '../testing/control-plane-harness.js';
import type { AdminRateLimits } from './admin-rate-limits.js';

/**
 * Regression tests: the event store is one PostgreSQL log shared by every tenant, and nothing counted
 * the bytes a tenant appended. Within its command limit, one tenant admin could append a route of
 * TENANT_MAX_ROUTE_BYTES per command (600 a minute, ≈ 27 GB a day), or a config apply of megabytes in
 * one command, filling the disk every tenant's control plane depends on. Now each tenant has a budget of
 * event bytes per hour (a token bucket charged before anything is appended): over it → 429
 * `admin_rate_limited` naming `tenant_event_bytes_per_hour`, with Retry-After.
 */

const KIB = 1024;
const error = (response: ApiResponse) =>
  json(response)['error'] as { code: string; details: Array<{ field: string; issue: string }> };

const eventBytes = (event: RecordedEvent) =>
  Buffer.byteLength(JSON.stringify(event.data)) + Buffer.byteLength(JSON.stringify(event.metadata));
const bytesOf = (events: readonly RecordedEvent[], tenantId: string) =>
  events.filter((event) => event.metadata.tenant_id === tenantId).reduce((sum, e) => sum + eventBytes(e), 0);

describe('per-tenant event bytes budget (memory buckets, a clock the test moves)', () => {
  let cp: ControlPlaneHarness;
  let clock = 1_000_000;
  // 256 KiB per hour: about 4 routes of 30 KiB (each charged its JSON twice), then one every ~15 minutes.
  const limits: AdminRateLimits = {
    tenantCommands: null,
    userRequests: null,
    tenantEventBytes: { perMinute: (256 * KIB) / 60, burst: 256 * KIB },
  };
  const ids = { a: '', b: '' };

  const tenant = async (subdomain: string) => {
    const response = await cp.request('POST', '/api/v1/tenants', {
      body: { name: subdomain, subdomain, clerk_org_id: `org_${subdomain.replace('-', '_')}` },
    });
    expect(response.status, JSON.stringify(response.body)).toBe(201);
    return json(response)['id'] as string;
  };
  // A route answering itself with 30 KiB of headers: just under TENANT_MAX_ROUTE_BYTES.
  const headers = Object.fromEntries(Array.from({ length: 30 }, (_, h) => [`x-h-${h}`, 'v'.repeat(1000)]));
  const bigRoute = (tenantId: string, i: number) => ({
    tenant_id: tenantId,
    origin_id: null,
    path_pattern: `/big-${i}/*`,
    auth_mode: 'public',
    fixed_response: { status: 200, headers },
  });

  beforeAll(async () => {
    cp = await startControlPlane({ withReadSide: true, adminRateLimits: { limits, now: () => clock } });
    ids.a = await tenant('bytes-a');
    ids.b = await tenant('bytes-b');
  }, 60_000);
  afterAll(async () => {
    await cp?.close();
  });

  it('bounds the bytes one tenant appends by its budget, not by its command count; others unaffected', async () => {
    const statuses: number[] = [];
    let refused: ApiResponse | undefined;
    for (let i = 0; i < 40 && refused === undefined; i++) {
      const response = await cp.request('POST', '/api/v1/routes', { body: bigRoute(ids.a, i) });
      statuses.push(response.status);
      if (response.status !== 201) refused = response;
    }
    const appended = bytesOf(await cp.allEvents(), ids.a);
    expect(appended, `${statuses.length} commands appended ${appended} bytes`).toBeLessThanOrEqual(256 * KIB);
    expect(refused?.status, JSON.stringify(refused?.body)).toBe(429);
    expect(error(refused!).code).toBe('admin_rate_limited');
    expect(error(refused!).details[0]?.field).toBe('tenant_event_bytes_per_hour');
    expect(Number(refused!.headers.get('retry-after'))).toBeGreaterThan(0);
    // Refused before anything is appended.
    expect(bytesOf(await cp.allEvents(), ids.a)).toBe(appended);

    // Tenant B's budget is its own.
    expect((await cp.request('POST', '/api/v1/routes', { body: bigRoute(ids.b, 0) })).status).toBe(201);

    clock += Number(refused!.headers.get('retry-after')) * 1000;
    expect((await cp.request('POST', '/api/v1/routes', { body: bigRoute(ids.a, 99) })).status).toBe(201);
    clock += 3_600_000;
  });

  it('lets one config apply larger than the whole burst through when the bucket is full, then repays it', async () => {
    clock += 3_600_000; // full again
    const read = await cp.request('GET', `/api/v1/tenants/${ids.b}/config/document`, {
      headers: { 'x-min-position': (await cp.store.headPosition()).toString() },
    });
    expect(read.status, JSON.stringify(read.body)).toBe(200);
    const document = json(read)['document'] as { routes: Array<Record<string, unknown>> };
    for (let i = 1; i <= 12; i++) {
      const { tenant_id: _, ...route } = bigRoute(ids.b, i);
      document.routes.push(route);
    }
    const before = bytesOf(await cp.allEvents(), ids.b);
    const applied = await cp.request('POST', `/api/v1/tenants/${ids.b}/config/apply`, { body: document });
    expect(applied.status, JSON.stringify(applied.body)).toBe(200);
    expect(bytesOf(await cp.allEvents(), ids.b) - before).toBeGreaterThan(256 * KIB);

    // The bucket is in debt: the next command (however small) waits until it is repaid.
    const events = (await cp.allEvents()).length;
    const refused = await cp.request('PATCH', `/api/v1/tenants/${ids.b}`, { body: { name: 'b' } });
    expect(refused.status, JSON.stringify(refused.body)).toBe(429);
    expect(error(refused).details[0]?.field).toBe('tenant_event_bytes_per_hour');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(60);
    expect((await cp.allEvents()).length).toBe(events);
    clock += Number(refused.headers.get('retry-after')) * 1000;
    expect((await cp.request('PATCH', `/api/v1/tenants/${ids.b}`, { body: { name: 'b' } })).status).toBe(200);
  });
});

/**
 * Regression test: the budget counted only the events' JSON, while each event also takes its row and
 * index entries in the event log and an audit-log row (a copy of its data, under the audit log's
 * indexes). A cache purge (285 bytes of JSON) grew the database by ~1.9 KB, so at the command limit the
 * cheapest commands grew it 6–7 times faster than the budget said, and a config apply of many small
 * events as much.
 */
describe('per-tenant event bytes budget and the database’s growth', () => {
  let cp: ControlPlaneHarness;
  const budget = 512 * KIB;
  const noPurge = async () => {};

  beforeAll(async () => {
    cp = await startControlPlane({
      withReadSide: true,
      cachePurger: { purgeRoute: noPurge, purgeTenant: noPurge, purgeTags: noPurge },
      adminRateLimits: {
        // A clock that does not move: the bucket is never refilled during the test.
        limits: {
          tenantCommands: null,
          userRequests: null,
          tenantEventBytes: { perMinute: 1, burst: budget },
        },
        now: () => 1_000_000,
      },
    });
  }, 60_000);
  afterAll(async () => {
    await cp?.close();
  });

  /** Bytes of the event log and the audit log, tables with their indexes and TOAST. */
  const storedBytes = async () => {
    await cp.readModelsCaughtUp();
    const { rows } = await cp.db.pool.query<{ bytes: string }>(
      `select pg_total_relation_size('event_store_events') + pg_total_relation_size('read_models.audit_log') as bytes`,
    );
    return Number(rows[0]?.bytes);
  };

  it('grows the event and audit logs by about its budget, even with the cheapest commands', async () => {
    const created = await cp.request('POST', '/api/v1/tenants', {
      body: { name: 'purges', subdomain: 'purges', clerk_org_id: 'org_purges' },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const tenantId = json(created)['id'] as string;
    const before = await storedBytes();
    let accepted = 0;
    let refused: ApiResponse | undefined;
    while (accepted < 600 && refused === undefined) {
      const response = await cp.request('POST', `/api/v1/tenants/${tenantId}/cache/purge`, {});
      if (response.status === 200) accepted += 1;
      else refused = response;
    }
    const grown = (await storedBytes()) - before;
    expect(grown, `${accepted} purges grew the database by ${grown} bytes`).toBeLessThanOrEqual(budget * 1.2);
    expect(refused?.status, JSON.stringify(refused?.body)).toBe(429);
    expect(error(refused!).details[0]?.field).toBe('tenant_event_bytes_per_hour');
  }, 180_000);
});
