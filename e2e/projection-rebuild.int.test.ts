import { randomBytes } from 'node:crypto';
import {
  type ControlPlaneHarness,
  json,
  startControlPlane,
} from '@vantageedge/control-plane/testing/control-plane-harness';
import { readReadModelsPosition } from '@vantageedge/projections/read-models/position';
import { replayReadModels } from '@vantageedge/projections/read-models/replay';
import { READ_MODELS_SCHEMA } from '@vantageedge/projections/read-models/schema';
import { tableDifferences } from '@vantageedge/projections/read-models/testing/compare';
import { refoldSnapshots } from '@vantageedge/projections/snapshots/refold';
import { waitForSnapshotsPublished } from '@vantageedge/projections/snapshots/republish';
import {
  type SnapshotProjector,
  startSnapshotProjector,
} from '@vantageedge/projections/snapshots/snapshot-projector';
import {
  readSnapshotsPosition,
  SNAPSHOT_PROJECTION,
} from '@vantageedge/projections/snapshots/snapshot-state';
import { createInMemorySnapshotBus } from '@vantageedge/shared/snapshot-bus/in-memory-snapshot-bus';
import type { SnapshotMessage, SnapshotSubscription } from '@vantageedge/shared/snapshot-bus/port';
import {
  CLIENT_AUTH_USAGE,
  createTestCa,
  issueTestCertificate,
} from '@vantageedge/shared/testing/test-certificates';
import { keyRing } from '@vantageedge/shared/tls/private-key-envelope';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The read models, the audit log and the gateway snapshots are folds of the log: whatever batches the
 * live projectors happened to apply, a rebuild from position 0 must give the same rows. A seeded mix
 * of admin commands of two tenants (a deleted one re-created under its subdomain, rollbacks, keys,
 * custom domains, settings) goes through the admin API while both projectors follow live.
 */

const SEED = Number(process.env['REBUILD_SEED'] ?? 20_261_206);
const COMMANDS = Number(process.env['REBUILD_COMMANDS'] ?? 160);

function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface LiveTenant {
  id: string;
  subdomain: string;
  origins: string[];
  routes: string[];
  keys: string[];
  users: string[];
  domains: string[];
  certificates: string[];
  positions: string[];
}

let cp: ControlPlaneHarness;
let snapshots: SnapshotProjector;
/** A client certificate tenants present to their origins (no domains). */
let clientCertificate: { certificate_pem: string; private_key_pem: string };
const bus = createInMemorySnapshotBus();
let replica: SnapshotSubscription;
/** Every message the bus delivered, in order. */
const delivered: SnapshotMessage[] = [];

beforeAll(async () => {
  const noPurge = async () => {};
  cp = await startControlPlane({
    withReadSide: true,
    cachePurger: { purgeRoute: noPurge, purgeTenant: noPurge, purgeTags: noPurge },
    certificateKeyRing: keyRing(randomBytes(32).toString('base64')),
  });
  const client = await issueTestCertificate(await createTestCa(), {
    dnsNames: ['client.rebuild.example'],
    extendedKeyUsages: [CLIENT_AUTH_USAGE],
  });
  clientCertificate = { certificate_pem: client.chainPem, private_key_pem: client.privateKeyPem };
  snapshots = startSnapshotProjector({
    store: cp.store,
    pool: cp.db.pool,
    bus,
    batchSize: 5,
    retryDelayMs: 50,
    publishPollMs: 100,
  });
  replica = await bus.subscribe({
    onMessage: (message) => {
      delivered.push(message);
    },
    onCaughtUp: () => {},
    onHealth: () => {},
  });
}, 120_000);

afterAll(async () => {
  await replica?.close();
  await snapshots?.stop();
  await bus.close();
  await cp?.close();
});

/** Tenants some message of which came after one of a higher version. */
function versionsGoingBack(): string[] {
  const newest = new Map<string, bigint>();
  const back = new Set<string>();
  for (const message of delivered) {
    const before = newest.get(message.tenantId) ?? -1n;
    if (message.version < before) back.add(`${message.tenantId}: ${message.version} after ${before}`);
    else newest.set(message.tenantId, message.version);
  }
  return [...back];
}

async function caughtUp(): Promise<bigint> {
  const head = await cp.store.headPosition();
  await cp.readModelsCaughtUp();
  for (const deadline = Date.now() + 60_000; (await readSnapshotsPosition(cp.db.pool)) < head; ) {
    if (Date.now() > deadline) throw new Error(`the snapshots did not reach position ${head}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  expect(await readReadModelsPosition(cp.db.pool)).toBe(head);
  expect(await waitForSnapshotsPublished(cp.db.pool, { timeoutMs: 30_000, pollMs: 50 })).toBe(true);
  await snapshots.idle();
  return head;
}

async function snapshotRows(): Promise<unknown[]> {
  const { rows } = await cp.db.pool.query(
    `select tenant_id, version::text, status, snapshot, event_time from snapshot_state order by tenant_id`,
  );
  return rows;
}

/** Runs the seeded commands; every answer is 2xx or a 4xx (a command the state refuses), never 5xx. */
async function runCommands(): Promise<void> {
  const next = random(SEED);
  const pick = <T>(items: readonly T[]): T | undefined => items[Math.floor(next() * items.length)];
  const tenants: LiveTenant[] = [];
  let created = 0;
  const unexpected: string[] = [];
  const send = async (method: string, path: string, body?: unknown) => {
    const response = await cp.request(method, path, body === undefined ? {} : { body });
    if (response.status >= 500)
      unexpected.push(`${method} ${path} ${response.status} ${JSON.stringify(response.body)}`);
    return response;
  };
  const createTenant = async (subdomain: string) => {
    created += 1;
    const response = await send('POST', '/api/v1/tenants', { name: `tenant ${created}`, subdomain });
    if (response.status !== 201) return;
    tenants.push({
      id: json(response)['id'] as string,
      subdomain,
      origins: [],
      routes: [],
      keys: [],
      users: [],
      domains: [],
      certificates: [],
      positions: [response.headers.get('x-event-position') ?? '0'],
    });
  };
  await createTenant('alpha');
  await createTenant('beta');

  for (let step = 0; step < COMMANDS; step++) {
    const tenant = pick(tenants);
    if (!tenant) break;
    const roll = next();
    const n = step;
    let response: Awaited<ReturnType<typeof send>> | null = null;
    if (roll < 0.1) {
      response = await send('POST', '/api/v1/origins', {
        tenant_id: tenant.id,
        name: `origin ${n}`,
        url: `https://o${n}.example.com`,
      });
      if (response.status === 201) tenant.origins.push(json(response)['id'] as string);
    } else if (roll < 0.2 && tenant.origins.length > 0) {
      response = await send('POST', '/api/v1/routes', {
        tenant_id: tenant.id,
        origin_id: pick(tenant.origins),
        path_pattern: `/r${n}/*`,
        auth_mode: pick(['public', 'apikey_required']),
        ...(next() < 0.5 ? { cache_policy: { ttl_seconds: 30 } } : {}),
      });
      if (response.status === 201) tenant.routes.push(json(response)['id'] as string);
    } else if (roll < 0.28 && tenant.routes.length > 0) {
      response = await send('PATCH', `/api/v1/routes/${pick(tenant.routes)}`, {
        priority: Math.floor(next() * 10),
        tags: [`t${n % 3}`],
      });
    } else if (roll < 0.33 && tenant.origins.length > 0) {
      response = await send('PATCH', `/api/v1/origins/${pick(tenant.origins)}`, {
        url: `https://p${n}.example.com`,
        timeout_seconds: 5 + (n % 20),
      });
    } else if (roll < 0.42) {
      response = await send('POST', '/api/v1/api-keys', {
        tenant_id: tenant.id,
        name: `key ${n}`,
        ...(next() < 0.3 ? { quota: { requests_per_day: 100 + n } } : {}),
      });
      if (response.status === 201) tenant.keys.push(json(response)['id'] as string);
    } else if (roll < 0.47 && tenant.keys.length > 0) {
      const key = tenant.keys.shift() ?? '';
      response = await send('POST', `/api/v1/api-keys/${key}/rotate`, {
        grace_period_seconds: pick([0, 3600]),
      });
      const fresh = response.status < 300 ? (json(response)['id'] as string | undefined) : undefined;
      if (fresh) tenant.keys.push(fresh);
    } else if (roll < 0.51 && tenant.keys.length > 0) {
      response = await send('POST', `/api/v1/api-keys/${tenant.keys.pop()}/revoke`, { reason: 'leaked' });
    } else if (roll < 0.56 && tenant.keys.length > 0) {
      response = await send(
        'PATCH',
        `/api/v1/api-keys/${pick(tenant.keys)}`,
        next() < 0.5
          ? { quota: next() < 0.5 ? null : { requests_per_month: 1000 + n } }
          : { tags: [`k${n}`] },
      );
    } else if (roll < 0.61) {
      response = await send('POST', '/api/v1/users', {
        tenant_id: tenant.id,
        clerk_user_id: `user_${tenant.subdomain}_${n}`,
        email: `u${n}@example.com`,
        role: pick(['admin', 'member', 'viewer']),
      });
      if (response.status === 201) tenant.users.push(json(response)['id'] as string);
    } else if (roll < 0.64 && tenant.users.length > 0) {
      response = await send('PATCH', `/api/v1/users/${pick(tenant.users)}`, {
        role: pick(['admin', 'member', 'viewer']),
      });
    } else if (roll < 0.66 && tenant.users.length > 0) {
      response = await send('DELETE', `/api/v1/users/${tenant.users.pop()}`);
    } else if (roll < 0.7) {
      const domain = `api${n}.${tenant.subdomain}.example`;
      response = await send('POST', `/api/v1/tenants/${tenant.id}/domains`, {
        domain,
        verified: next() < 0.7,
      });
      if (response.status === 201) tenant.domains.push(domain);
    } else if (roll < 0.72 && tenant.domains.length > 0) {
      response = await send('DELETE', `/api/v1/tenants/${tenant.id}/domains/${tenant.domains.pop()}`);
    } else if (roll < 0.76) {
      response = await send('PATCH', `/api/v1/tenants/${tenant.id}`, {
        ...(next() < 0.5 ? { name: `renamed ${n}` } : {}),
        settings: { rate_limit: { requests_per_second: 10 + n } },
      });
    } else if (roll < 0.8 && tenant.routes.length > 0) {
      response = await send('DELETE', `/api/v1/routes/${tenant.routes.pop()}`);
    } else if (roll < 0.83) {
      const to = pick(tenant.positions) ?? '0';
      response = await send('POST', `/api/v1/tenants/${tenant.id}/config/rollback`, { to_position: to });
      if (response.status < 300) {
        // What the rollback removed or brought back is read again from the read models.
        const [routes, origins, keys] = await Promise.all(
          ['routes', 'origins', 'api-keys'].map((kind) =>
            send('GET', `/api/v1/${kind}?tenant_id=${tenant.id}&limit=200`, undefined).then((list) =>
              ((json(list)['data'] as Array<{ id: string }> | undefined) ?? []).map((r) => r.id),
            ),
          ),
        );
        tenant.routes = routes ?? [];
        tenant.origins = origins ?? [];
        tenant.keys = keys ?? [];
      }
    } else if (roll < 0.85) {
      response = await send('POST', `/api/v1/tenants/${tenant.id}/cache/purge`, {});
    } else if (roll < 0.87) {
      response = await send('POST', '/api/v1/certificates', { tenant_id: tenant.id, ...clientCertificate });
      if (response.status === 201) tenant.certificates.push(json(response)['id'] as string);
    } else if (roll < 0.88 && tenant.certificates.length > 0) {
      response = await send('POST', `/api/v1/certificates/${pick(tenant.certificates)}/reseal`, {});
    } else if (roll < 0.89 && tenant.certificates.length > 0) {
      response = await send('DELETE', `/api/v1/certificates/${tenant.certificates.pop()}`);
    } else if (roll < 0.92 && step > 20) {
      // Deleted, then re-created under the same subdomain (a new tenant id).
      response = await send('DELETE', `/api/v1/tenants/${tenant.id}`);
      if (response.status < 300) {
        tenants.splice(tenants.indexOf(tenant), 1);
        await createTenant(tenant.subdomain);
      }
    }
    const position = response?.headers.get('x-event-position');
    if (response && response.status < 300 && position) {
      tenant.positions.push(position);
      // Reads of the command's own writes (the rollback's lists) need the read models there.
      await cp.request('GET', `/api/v1/tenants/${tenant.id}`, { headers: { 'x-min-position': position } });
    }
  }
  expect(unexpected).toEqual([]);
}

type Row = Record<string, unknown>;

/** What platform admins read: the tenants, and each live tenant's resources and audit log. */
async function adminViews(): Promise<{ tenants: Row[]; lists: Record<string, Row[]> }> {
  const list = async (path: string): Promise<Row[]> => {
    const response = await cp.request('GET', path);
    expect(response.status, path).toBe(200);
    return json(response)['data'] as Row[];
  };
  const tenants = await list('/api/v1/tenants?limit=200');
  const lists: Record<string, Row[]> = {};
  for (const tenant of tenants) {
    const id = tenant['id'] as string;
    for (const kind of ['origins', 'routes', 'api-keys', 'users', 'certificates'])
      lists[`${kind} ${id}`] = await list(`/api/v1/${kind}?tenant_id=${id}&limit=200`);
    lists[`domains ${id}`] = await list(`/api/v1/tenants/${id}/domains`);
    lists[`audit-log ${id}`] = await list(`/api/v1/audit-log?tenant_id=${id}&limit=200`);
  }
  return { tenants, lists };
}

describe('projections rebuilt from the log', () => {
  it('equal the live read models, audit log and gateway snapshots, row for row', async () => {
    await runCommands();
    const head = await caughtUp();
    const events = await cp.store.readAll();
    expect(events.length).toBeGreaterThan(COMMANDS / 2);
    const types = new Set(events.map((event) => event.type));
    for (const type of [
      'TenantDeleted',
      'ConfigRolledBack',
      'CustomDomainVerified',
      'ApiKeyRotated',
      'ApiKeyQuotaChanged',
      'CertificateUploaded',
    ])
      expect(types, type).toContain(type);

    for (const batchSize of [1, 7, 5000]) {
      const rebuilt = await replayReadModels({ store: cp.store, pool: cp.db.pool, swap: false, batchSize });
      try {
        expect(
          await tableDifferences(cp.db.pool, READ_MODELS_SCHEMA, rebuilt.schema),
          `replay in batches of ${batchSize}`,
        ).toEqual({});
      } finally {
        await cp.db.pool.query(`drop schema ${rebuilt.schema} cascade`);
      }
    }

    // The documented replay (POST /api/v1/admin/replay) swaps the rebuilt tables in: every answer of
    // the admin API stays the same, and each tenant's lists hold its own rows only.
    const viewsBefore = await adminViews();
    const started = await cp.request('POST', '/api/v1/admin/replay');
    expect(started.status).toBe(202);
    for (;;) {
      const status = json(await cp.request('GET', '/api/v1/admin/replay'))['replay'] as { status: string };
      if (status.status !== 'running') {
        expect(status).toMatchObject({ status: 'succeeded', error: null });
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const viewsAfter = await adminViews();
    expect(viewsAfter).toEqual(viewsBefore);
    const subdomains = viewsAfter.tenants.map((tenant) => tenant['subdomain']);
    expect(new Set(subdomains).size).toBe(subdomains.length);
    for (const [key, rows] of Object.entries(viewsAfter.lists)) {
      const tenantId = key.split(' ')[1];
      for (const row of rows) expect(row['tenant_id'] ?? tenantId, key).toBe(tenantId);
    }

    // The config history folds the same log: a live tenant's config now is its snapshot.
    for (const row of (await snapshotRows()) as Row[]) {
      if (row['status'] !== 'live') continue;
      const config = await cp.request('GET', `/api/v1/tenants/${row['tenant_id']}/config`);
      const body = json(config);
      const snapshot = row['snapshot'] as Row;
      expect(body, `config of ${row['tenant_id']}`).toMatchObject({
        version: row['version'],
        tenant: snapshot['tenant'],
        origins: snapshot['origins'],
        routes: snapshot['routes'],
        custom_domains: snapshot['custom_domains'],
        users: snapshot['users'],
      });
    }

    expect(versionsGoingBack()).toEqual([]);
    const live = await snapshotRows();
    const refold = await refoldSnapshots({ store: cp.store, pool: cp.db.pool });
    expect(refold).toMatchObject({ position: head, parkedEvents: 0, movedForward: [], dropped: [] });
    expect(await snapshotRows()).toEqual(live);
  }, 600_000);

  it('resumed from an older checkpoint, folds nothing twice and sends no older version', async () => {
    const head = await caughtUp();
    const before = await snapshotRows();
    const sent = delivered.length;
    await snapshots.stop();
    // As after a crash between storing snapshots (ahead of a large tenant's) and the batch's commit.
    await cp.db.pool.query('update projection_checkpoints set position = $2 where name = $1', [
      SNAPSHOT_PROJECTION,
      (head / 3n).toString(),
    ]);
    snapshots = startSnapshotProjector({
      store: cp.store,
      pool: cp.db.pool,
      bus,
      batchSize: 3,
      retryDelayMs: 50,
      publishPollMs: 100,
    });
    await caughtUp();
    expect(await snapshotRows()).toEqual(before);
    expect(versionsGoingBack()).toEqual([]);
    expect(delivered.slice(sent)).toEqual([]);
    const { rows } = await cp.db.pool.query('select count(*)::int as parked from projection_parked_events');
    expect(rows).toEqual([{ parked: 0 }]);
  }, 120_000);
});
