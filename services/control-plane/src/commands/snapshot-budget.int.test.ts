import { randomBytes, randomUUID } from 'node:crypto';
import {
  type SnapshotProjector,
  startSnapshotProjector,
} from '@vantageedge/projections/snapshots/snapshot-projector';
import {
  newEvent,
  originState,
  snapshotSettled,
  snapshotStateOf,
} from '@vantageedge/projections/snapshots/testing';
import { streamName } from '@vantageedge/shared/domain/events';
import { MAX_DECODED_SNAPSHOT_BYTES } from '@vantageedge/shared/snapshot-bus/codec';
import { createInMemorySnapshotBus } from '@vantageedge/shared/snapshot-bus/in-memory-snapshot-bus';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ApiResponse,
  type ControlPlaneHarness,
  json,
  startControlPlane,
} from '../testing/control-plane-harness.js';
import type { SnapshotBudget } from './snapshot-guard.js';

/**
 * Regression tests (F2/F3): every command passed the counted limits, yet 70 origins × 100 targets of
 * 2,000-character URLs made a tenant's snapshot 10.6 MB after gzip, over the snapshot bus's 8 MiB: it
 * was never published again, its gateways kept its old hosts, and a custom domain it then released and
 * another tenant verified kept routing to it (now the newer claim takes the host at once on the gateways:
 * e2e/released-hosts.int.test.ts). Here the bus's limit is 64 KiB (budget: 75 % of it, 48,384
 * bytes after gzip), so a few origins of ten such targets reach it.
 */
const BUDGET: SnapshotBudget = {
  maxMessageBytes: 64 * 1024,
  maxDecodedBytes: MAX_DECODED_SNAPSHOT_BYTES,
  percent: 75,
  // The gzip bound is under test: no tighter bound on the JSON than what gateways inflate.
  maxJsonBytes: MAX_DECODED_SNAPSHOT_BYTES,
};
const GZIP_BUDGET = Math.floor((64 * 1024 - 1024) * 0.75);

let cp: ControlPlaneHarness;
let projector: SnapshotProjector;

/** A 2,000-character URL that gzip cannot shrink much (random). */
const longUrl = () => `https://o.example.com/${randomBytes(1500).toString('base64url').slice(0, 1975)}`;
const targets = (count: number) => Array.from({ length: count }, () => ({ url: longUrl(), weight: 1 }));

const post = (path: string, body: unknown) => cp.request('POST', path, { body });
const idOf = (response: ApiResponse) => json(response)['id'] as string;
const errorOf = (response: ApiResponse) =>
  json(response)['error'] as {
    code: string;
    message: string;
    details: Array<{ field: string; issue: string }>;
  };

async function tenant(name: string): Promise<string> {
  const created = await post('/api/v1/tenants', { name, subdomain: `${name}-${randomUUID().slice(0, 8)}` });
  expect(created.status).toBe(201);
  return idOf(created);
}

function expectOverBudget(response: ApiResponse, field: string): void {
  expect(response.status, JSON.stringify(response.body)).toBe(422);
  const error = errorOf(response);
  expect(error.code).toBe('limit_exceeded');
  expect(error.details.map((detail) => detail.field)).toEqual([field]);
  expect(error.details[0]?.issue).toMatch(
    new RegExp(
      `^the tenant's gateway snapshot would be \\d+ bytes after gzip / \\d+ bytes of JSON, over the most a ` +
        `snapshot may be \\(${GZIP_BUDGET} bytes after gzip, ${MAX_DECODED_SNAPSHOT_BYTES * 0.75} bytes of JSON`,
    ),
  );
  expect(error.message).toContain('TENANT_MAX_SNAPSHOT_PERCENT');
}

/** Creates origins of ten long targets until one is refused; answers the created ids and the refusal. */
async function fillUp(
  tenantId: string,
): Promise<{ origins: string[]; refused: ApiResponse; position: string }> {
  const origins: string[] = [];
  let position = '';
  for (let index = 0; index < 20; index += 1) {
    const response = await post('/api/v1/origins', {
      tenant_id: tenantId,
      name: `o${index}`,
      targets: targets(10),
    });
    if (response.status !== 201) return { origins, refused: response, position };
    origins.push(idOf(response));
    position = response.headers.get('x-event-position')!;
  }
  throw new Error('20 origins of ten long targets were all accepted: no snapshot budget');
}

const state = (tenantId: string) => snapshotStateOf(cp.db.pool, tenantId);
const settled = (tenantId: string, position: string) => snapshotSettled(cp.db.pool, tenantId, position);

beforeAll(async () => {
  cp = await startControlPlane({ withReadSide: true, snapshotBudget: BUDGET });
  // The snapshot pipeline behind the control plane, with a bus of the budget's limit.
  projector = startSnapshotProjector({
    store: cp.store,
    pool: cp.db.pool,
    bus: createInMemorySnapshotBus({ maxMessageBytes: BUDGET.maxMessageBytes }),
    publishPollMs: 200,
  });
});
afterAll(async () => {
  await projector?.stop();
  await cp?.close();
});

describe('the snapshot budget (a tenant snapshot the bus can always take)', () => {
  it('refuses the command that would take the snapshot over it with 422 limit_exceeded naming what grew, appending nothing', async () => {
    const acme = await tenant('acme');
    const { origins, refused, position } = await fillUp(acme);
    expect(origins.length).toBeGreaterThan(0);
    expectOverBudget(refused, 'origins');

    const events = (await cp.allEvents()).length;
    // An update that grows an origin is refused too; so is a retry of the refused create.
    expectOverBudget(
      await cp.request('PATCH', `/api/v1/origins/${origins[0]}`, { body: { targets: targets(20) } }),
      'origins',
    );
    expectOverBudget(
      await post('/api/v1/origins', { tenant_id: acme, name: 'again', targets: targets(10) }),
      'origins',
    );
    expect((await cp.allEvents()).length).toBe(events);

    // Every snapshot it was allowed to make went out (none was refused by the bus).
    await settled(acme, position);
    expect((await state(acme))?.published_version).toBe((await state(acme))?.version);

    // Deletions are always allowed; once back under the budget the tenant grows again.
    const deleted = await cp.request('DELETE', `/api/v1/origins/${origins[0]}`);
    expect(deleted.status).toBe(204);
    const again = await post('/api/v1/origins', { tenant_id: acme, name: 'again', targets: targets(10) });
    expect(again.status, JSON.stringify(again.body)).toBe(201);
  });

  it('leaves a small tenant alone', async () => {
    const small = await tenant('small');
    const origin = await post('/api/v1/origins', {
      tenant_id: small,
      name: 'api',
      url: 'https://api.small.example',
    });
    expect(origin.status).toBe(201);
    const route = await post('/api/v1/routes', {
      tenant_id: small,
      origin_id: idOf(origin),
      path_pattern: '/api/*',
      auth_mode: 'public',
    });
    expect(route.status).toBe(201);
    expect((await post('/api/v1/api-keys', { tenant_id: small, name: 'ci' })).status).toBe(201);
  });

  it('lets a tenant over the budget from older events shrink, never grow', async () => {
    const globex = await tenant('globex');
    // Recorded before the budget existed: straight into the log, past every command's checks.
    const old: string[] = [];
    for (let index = 0; index < 6; index += 1) {
      const origin = { ...originState(globex), name: `old${index}`, targets: targets(10) };
      old.push(origin.origin_id);
      await cp.store.appendToStream(streamName.origin(origin.origin_id), [newEvent('OriginCreated', origin)]);
    }
    const events = (await cp.allEvents()).length;
    expectOverBudget(
      await post('/api/v1/origins', { tenant_id: globex, name: 'tiny', url: 'https://tiny.globex.example' }),
      'origins',
    );
    expectOverBudget(
      await post('/api/v1/routes', {
        tenant_id: globex,
        origin_id: old[0],
        path_pattern: '/x/*',
        auth_mode: 'public',
      }),
      'routes',
    );
    expectOverBudget(await post('/api/v1/api-keys', { tenant_id: globex, name: 'ci' }), 'api_keys');
    expect((await cp.allEvents()).length).toBe(events);

    // Fewer targets: smaller, so allowed although still over; deletions too.
    const fewer = await cp.request('PATCH', `/api/v1/origins/${old[0]}`, { body: { targets: targets(2) } });
    expect(fewer.status, JSON.stringify(fewer.body)).toBe(200);
    for (const id of old.slice(1, 4))
      expect((await cp.request('DELETE', `/api/v1/origins/${id}`)).status).toBe(204);
    // Back under it: growing is allowed again.
    expect((await post('/api/v1/api-keys', { tenant_id: globex, name: 'ci' })).status).toBe(201);
  });
});

describe('the snapshot budget and commands that reach it together', () => {
  // Regression: each of a burst of commands was measured against the config before the others, so
  // origins sent at once all passed and together took the snapshot over the bus's limit (the bus then
  // refused it, and the gateways kept an old config). A tenant's growing commands now run one at a time
  // from the check to the append.
  it('keeps the snapshot publishable when commands that each fit are sent at once', async () => {
    const burst = await tenant('burst');
    const { origins } = await fillUp(burst);
    for (const id of origins) {
      expect((await cp.request('DELETE', `/api/v1/origins/${id}`)).status).toBe(204);
    }
    const answers = await Promise.all(
      Array.from({ length: 24 }, (_, index) =>
        post('/api/v1/origins', { tenant_id: burst, name: `burst${index}`, targets: targets(4) }),
      ),
    );
    const created = answers.filter((answer) => answer.status === 201);
    expect(created.length).toBeGreaterThan(0);
    for (const answer of answers.filter((answer) => answer.status !== 201))
      expectOverBudget(answer, 'origins');
    const last = Math.max(...created.map((answer) => Number(answer.headers.get('x-event-position'))));
    await settled(burst, String(last));
    const row = await state(burst);
    expect(row?.failed_version).toBeNull();
    expect(row?.published_version).toBe(row?.version);
  });

  // Regression: a rollback adds before it removes, so its steps passed through a config larger than
  // both ends; the budget refused a step halfway, leaving neither config (and a ConfigRolledBack marker).
  // Each end here is ≈ 27 KB after gzip (budget 48 KB), the way between them ≈ 54 KB (bus 64 KB).
  it('rolls back between two configs that each fit, though a step passes through more than both', async () => {
    const swap = await tenant('swap');
    const first = await Promise.all(
      [0, 1].map((index) =>
        post('/api/v1/origins', { tenant_id: swap, name: `a${index}`, targets: targets(9) }),
      ),
    );
    for (const answer of first) expect(answer.status, JSON.stringify(answer.body)).toBe(201);
    const position = Math.max(...first.map((answer) => Number(answer.headers.get('x-event-position'))));
    for (const answer of first)
      expect((await cp.request('DELETE', `/api/v1/origins/${idOf(answer)}`)).status).toBe(204);
    for (const index of [0, 1, 2]) {
      const created = await post('/api/v1/origins', {
        tenant_id: swap,
        name: `b${index}`,
        targets: targets(8),
      });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
    }
    const rolledBack = await post(`/api/v1/tenants/${swap}/config/rollback`, {
      to_position: String(position),
    });
    expect(rolledBack.status, JSON.stringify(rolledBack.body)).toBe(200);
    const config = await cp.request('GET', `/api/v1/tenants/${swap}/config`, {
      headers: { 'x-min-position': rolledBack.headers.get('x-event-position') ?? '' },
    });
    const names = (json(config)['origins'] as Array<{ name: string }>).map((origin) => origin.name).sort();
    expect(names).toEqual(['a0', 'a1']);
    await settled(swap, rolledBack.headers.get('x-event-position')!);
    expect((await state(swap))?.failed_version).toBeNull();
  });
});
