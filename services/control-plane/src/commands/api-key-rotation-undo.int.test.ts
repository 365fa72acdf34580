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
  tenantId = await createTenant(cp, 'Rotation Budget', 'rotation-budget');
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

/** A tenant named `name` on the subdomain `subdomain`: its id. */
async function createTenant(cp: ControlPlaneHarness, name: string, subdomain: string): Promise<string> {
  const created = await cp.request('POST', '/api/v1/tenants', { body: { name, subdomain } });
  expect(created.status).toBe(201);
  return json(created)['id'] as string;
}

/** A key `deploy` issued to the tenant: its id. */
async function issueKey(cp: ControlPlaneHarness, tenantId: string): Promise<string> {
  const issued = await cp.request('POST', '/api/v1/api-keys', {
    body: { tenant_id: tenantId, name: 'deploy' },
  });
  expect(issued.status, JSON.stringify(issued.body)).toBe(201);
  return json(issued)['id'] as string;
}

/** Sends the key's rotation, each time with the same Idempotency-Key (a client retrying it). */
const rotation = (cp: ControlPlaneHarness, keyId: string) => () =>
  cp.request('POST', `/api/v1/api-keys/${keyId}/rotate`, {
    body: {},
    headers: { 'idempotency-key': 'rotate-deploy' },
  });

/**
 * The rotation's Idempotency-Key lock runs out unrenewed (PostgreSQL out of reach, or the process
 * stalled): a retry sent now takes the key over.
 */
async function expireRotationLock(cp: ControlPlaneHarness): Promise<void> {
  await cp.db.pool.query(
    `update control_plane_idempotency_keys set locked_until = now() - interval '1 second' where key = $1`,
    ['rotate-deploy'],
  );
}

/**
 * A store wrapper that runs the hook set by `once` (a single time) just before or just after it
 * appends events that include one of `type`.
 */
function hookOnAppendOf(type: string, when: 'before' | 'after') {
  let hook: (() => Promise<void>) | null = null;
  const runHook = async (events: ReadonlyArray<{ type: string }>) => {
    const run = hook;
    if (run && events.some((event) => event.type === type)) {
      hook = null;
      await run();
    }
  };
  return {
    once(run: () => Promise<void>): void {
      hook = run;
    },
    wrap: (store: EventStore): EventStore =>
      new Proxy(store, {
        get(target, property) {
          if (property === 'appendToStream') {
            const append: EventStore['appendToStream'] = async (stream, events, options) => {
              if (when === 'before') await runHook(events);
              const appended = await target.appendToStream(stream, events, options);
              if (when === 'after') await runHook(events);
              return appended;
            };
            return append;
          }
          const value: unknown = Reflect.get(target, property, target);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      }),
  };
}

describe('a rotation refused by the event bytes budget', () => {
  it('leaves the tenant with the key it had, and no new live key', async () => {
    clock += 365 * 24 * 60 * 60 * 1000;
    const keyId = await issueKey(cp, tenantId);

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
  /** Runs its hook once, just before the rotation is recorded on the old key. */
  const beforeRecord = hookOnAppendOf('ApiKeyRotated', 'before');

  beforeAll(async () => {
    lossy = await startControlPlane({ wrapStore: beforeRecord.wrap });
    tenantId = await createTenant(lossy, 'Rotation Takeover', 'rotation-takeover');
  }, 60_000);
  afterAll(async () => {
    await lossy?.close();
  });

  it('leaves the tenant with the key it had and no new live key; sent again, the rotation runs', async () => {
    const keyId = await issueKey(lossy, tenantId);
    const rotate = rotation(lossy, keyId);
    let retried: Awaited<ReturnType<typeof rotate>> | undefined;
    beforeRecord.once(async () => {
      // A retry takes the key over and finds the new key's event.
      await expireRotationLock(lossy);
      retried = await rotate();
    });

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
  /** Runs its hook once, just after the rotation's new key is issued. */
  const afterIssue = hookOnAppendOf('ApiKeyIssued', 'after');

  beforeAll(async () => {
    lossy = await startControlPlane({
      wrapStore: afterIssue.wrap,
      adminRateLimits: { limits, now: () => budgetClock },
    });
    tenantId = await createTenant(lossy, 'Rotation Takeover Budget', 'rotation-takeover-budget');
  }, 60_000);
  afterAll(async () => {
    await lossy?.close();
  });

  it('lets the rotation run when sent again, rather than answering it applied', async () => {
    budgetClock += 365 * 24 * 60 * 60 * 1000;
    const keyId = await issueKey(lossy, tenantId);
    const rotate = rotation(lossy, keyId);
    let retried: Awaited<ReturnType<typeof rotate>> | undefined;
    afterIssue.once(async () => {
      // A retry takes the key over and finds the new key's event.
      await expireRotationLock(lossy);
      retried = await rotate();
    });

    // The debt of the issue repaid: the rotation's new key is let through, its record is not.
    budgetClock += 365 * 24 * 60 * 60 * 1000;
    const first = await rotate();
    expect(first.status, JSON.stringify(first.body)).toBe(429);
    expect(retried?.status, JSON.stringify(retried?.body)).toBe(409);
    expect(await liveKeys(lossy, tenantId)).toEqual([keyId]);

    // The new key was revoked: nothing is applied, so sent again, the rotation runs (its budget
    // repaid between its two appends this time).
    afterIssue.once(async () => {
      budgetClock += 365 * 24 * 60 * 60 * 1000;
    });
    budgetClock += 365 * 24 * 60 * 60 * 1000;
    const again = await rotate();
    expect(again.status, JSON.stringify(again.body)).toBe(201);
    const replacement = json(again)['id'] as string;
    expect((await liveKeys(lossy, tenantId)).sort()).toEqual([keyId, replacement].sort());
  });
});
