import type { EventStore } from '@vantageedge/shared/event-store/port';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdminRateLimits } from '../admin-rate-limit/admin-rate-limits.js';
import { type ControlPlaneHarness, json, startControlPlane } from '../testing/control-plane-harness.js';

/**
 * A rotation issues the new key first, then records the rotation on the old one; when that record is
 * refused, the new key is revoked again. Regression: the revocation was refused by what refused the
 * record — the tenant's event bytes budget running out between the two appends, or the request's
 * Idempotency-Key taken over by a retry meanwhile — so the rotation failed, yet its new key stayed
 * live: its plaintext shown to no one, counted against TENANT_MAX_API_KEYS, one more for each rotation
 * retried.
 */
let cp: ControlPlaneHarness;
let clock = 1_000_000;
let tenantId: string;

// One byte of burst, refilled slowly: a command is let through whenever the bucket is not in debt, and
// leaves it in debt by its events' bytes (the test moves the clock to clear it).
const limits: AdminRateLimits = {
  tenantCommands: null,
  userRequests: null,
  tenantEventBytes: { perMinute: 1, burst: 1 },
};

beforeAll(async () => {
  cp = await startControlPlane({ adminRateLimits: { limits, now: () => clock } });
  const created = await cp.request('POST', '/api/v1/tenants', {
    body: { name: 'Rotation Budget', subdomain: 'rotation-budget' },
  });
  expect(created.status).toBe(201);
  tenantId = json(created)['id'] as string;
}, 60_000);

afterAll(async () => {
  await cp?.close();
});

/** The tenant's keys that were issued and never revoked. */
async function liveKeys(cp: ControlPlaneHarness, tenantId: string): Promise<string[]> {
  const events = (await cp.allEvents()).filter((event) => event.metadata.tenant_id === tenantId);
  const revoked = new Set(
    events.filter((event) => event.type === 'ApiKeyRevoked').map((event) => event.stream),
  );
  return events
    .filter((event) => event.type === 'ApiKeyIssued' && !revoked.has(event.stream))
    .map((event) => (event.data as { api_key_id: string }).api_key_id);
}

describe('a rotation refused by the event bytes budget', () => {
  it('leaves the tenant with the key it had, and no new live key', async () => {
    clock += 365 * 24 * 60 * 60 * 1000;
    const issued = await cp.request('POST', '/api/v1/api-keys', {
      body: { tenant_id: tenantId, name: 'deploy' },
    });
    expect(issued.status, JSON.stringify(issued.body)).toBe(201);
    const keyId = json(issued)['id'] as string;

    // The debt of the issue repaid: the rotation's new key is let through, its record is not.
    clock += 365 * 24 * 60 * 60 * 1000;
    const rotated = await cp.request('POST', `/api/v1/api-keys/${keyId}/rotate`, { body: {} });
    expect(rotated.status, JSON.stringify(rotated.body)).toBe(429);
    expect(json(rotated)).toMatchObject({
      error: { code: 'admin_rate_limited', details: [{ field: 'tenant_event_bytes_per_hour' }] },
    });

    expect(await liveKeys(cp, tenantId)).toEqual([keyId]);
  });
});

describe('a rotation whose Idempotency-Key a retry took over between its two appends', () => {
  let lossy: ControlPlaneHarness;
  let tenantId: string;
  /** Runs once, just before the rotation is recorded on the old key. */
  let beforeRecord: (() => Promise<void>) | null = null;

  const recordingRotation = (store: EventStore): EventStore =>
    new Proxy(store, {
      get(target, property) {
        if (property === 'appendToStream') {
          const append: EventStore['appendToStream'] = async (stream, events, options) => {
            const run = beforeRecord;
            if (run && events.some((event) => event.type === 'ApiKeyRotated')) {
              beforeRecord = null;
              await run();
            }
            return target.appendToStream(stream, events, options);
          };
          return append;
        }
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });

  beforeAll(async () => {
    lossy = await startControlPlane({ wrapStore: recordingRotation });
    const created = await lossy.request('POST', '/api/v1/tenants', {
      body: { name: 'Rotation Takeover', subdomain: 'rotation-takeover' },
    });
    expect(created.status).toBe(201);
    tenantId = json(created)['id'] as string;
  }, 60_000);
  afterAll(async () => {
    await lossy?.close();
  });

  it('leaves the tenant with the key it had and no new live key; sent again, the rotation runs', async () => {
    const issued = await lossy.request('POST', '/api/v1/api-keys', {
      body: { tenant_id: tenantId, name: 'deploy' },
    });
    expect(issued.status).toBe(201);
    const keyId = json(issued)['id'] as string;
    const rotate = () =>
      lossy.request('POST', `/api/v1/api-keys/${keyId}/rotate`, {
        body: {},
        headers: { 'idempotency-key': 'rotate-deploy' },
      });
    let retried: Awaited<ReturnType<typeof rotate>> | undefined;
    beforeRecord = async () => {
      // The request's lock ran out unrenewed (PostgreSQL out of reach, or the process stalled): a retry
      // takes the key over and finds the new key's event.
      await lossy.db.pool.query(
        `update control_plane_idempotency_keys set locked_until = now() - interval '1 second' where key = $1`,
        ['rotate-deploy'],
      );
      retried = await rotate();
    };

    const first = await rotate();
    expect(first.status, JSON.stringify(first.body)).toBe(409);
    expect(retried?.status).toBe(409);
    expect(await liveKeys(lossy, tenantId)).toEqual([keyId]);

    // The retry found the new key's event before it was revoked and answered "applied; answer lost".
    // Nothing is applied: sent again, the rotation runs, and its new key is shown.
    const again = await rotate();
    expect(again.status, JSON.stringify(again.body)).toBe(201);
    const replacement = json(again)['id'] as string;
    expect(json(again)['key']).toMatch(/^ve_live_/);
    expect((await liveKeys(lossy, tenantId)).sort()).toEqual([keyId, replacement].sort());
    const replayed = await rotate();
    expect(replayed.status).toBe(201);
    expect(json(replayed)['id']).toBe(replacement);
  });
});

describe('a rotation refused by the event bytes budget once a retry took its Idempotency-Key over', () => {
  let lossy: ControlPlaneHarness;
  let tenantId: string;
  let budgetClock = 1_000_000;
  /** Runs once, just after the rotation's new key is issued. */
  let afterIssue: (() => Promise<void>) | null = null;

  const issuingReplacement = (store: EventStore): EventStore =>
    new Proxy(store, {
      get(target, property) {
        if (property === 'appendToStream') {
          const append: EventStore['appendToStream'] = async (stream, events, options) => {
            const appended = await target.appendToStream(stream, events, options);
            const run = afterIssue;
            if (run && events.some((event) => event.type === 'ApiKeyIssued')) {
              afterIssue = null;
              await run();
            }
            return appended;
          };
          return append;
        }
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });

  beforeAll(async () => {
    lossy = await startControlPlane({
      wrapStore: issuingReplacement,
      adminRateLimits: { limits, now: () => budgetClock },
    });
    const created = await lossy.request('POST', '/api/v1/tenants', {
      body: { name: 'Rotation Takeover Budget', subdomain: 'rotation-takeover-budget' },
    });
    expect(created.status).toBe(201);
    tenantId = json(created)['id'] as string;
  }, 60_000);
  afterAll(async () => {
    await lossy?.close();
  });

  it('lets the rotation run when sent again, rather than answering it applied', async () => {
    budgetClock += 365 * 24 * 60 * 60 * 1000;
    const issued = await lossy.request('POST', '/api/v1/api-keys', {
      body: { tenant_id: tenantId, name: 'deploy' },
    });
    expect(issued.status).toBe(201);
    const keyId = json(issued)['id'] as string;
    const rotate = () =>
      lossy.request('POST', `/api/v1/api-keys/${keyId}/rotate`, {
        body: {},
        headers: { 'idempotency-key': 'rotate-deploy' },
      });
    let retried: Awaited<ReturnType<typeof rotate>> | undefined;
    afterIssue = async () => {
      // The request's lock ran out unrenewed: a retry takes the key over and finds the new key's event.
      await lossy.db.pool.query(
        `update control_plane_idempotency_keys set locked_until = now() - interval '1 second' where key = $1`,
        ['rotate-deploy'],
      );
      retried = await rotate();
    };

    // The debt of the issue repaid: the rotation's new key is let through, its record is not.
    budgetClock += 365 * 24 * 60 * 60 * 1000;
    const first = await rotate();
    expect(first.status, JSON.stringify(first.body)).toBe(429);
    expect(retried?.status, JSON.stringify(retried?.body)).toBe(409);
    expect(await liveKeys(lossy, tenantId)).toEqual([keyId]);

    // The new key was revoked: nothing is applied, so sent again, the rotation runs (its budget
    // repaid between its two appends this time).
    afterIssue = async () => {
      budgetClock += 365 * 24 * 60 * 60 * 1000;
    };
    budgetClock += 365 * 24 * 60 * 60 * 1000;
    const again = await rotate();
    expect(again.status, JSON.stringify(again.body)).toBe(201);
    const replacement = json(again)['id'] as string;
    expect((await liveKeys(lossy, tenantId)).sort()).toEqual([keyId, replacement].sort());
  });
});
