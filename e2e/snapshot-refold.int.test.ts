import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { readRolloutStatus } from '@vantageedge/control-plane/rollout/rollout-status';
import { GatewayConfigStore } from '@vantageedge/gateway/config/gateway-config-store';
import { startReadModelProjector } from '@vantageedge/projections/read-models/projector';
import {
  RefoldWouldDropTenantsError,
  refoldSnapshots,
  rollBackDrops,
} from '@vantageedge/projections/snapshots/refold';
import {
  requestSnapshotRepublish,
  waitForSnapshotsPublished,
} from '@vantageedge/projections/snapshots/republish';
import {
  type SnapshotProjector,
  startSnapshotProjector,
} from '@vantageedge/projections/snapshots/snapshot-projector';
import { readSnapshotsPosition } from '@vantageedge/projections/snapshots/snapshot-state';
import {
  newEvent,
  onePartitionTestBus,
  originState,
  routeState,
  tenantCreated,
} from '@vantageedge/projections/snapshots/testing';
import { CONTROL_PLANE_UPCASTERS } from '@vantageedge/shared/domain/event-upcasters';
import { streamName, type TenantState } from '@vantageedge/shared/domain/events';
import type { NewEvent, RecordedEvent } from '@vantageedge/shared/event-store/port';
import {
  PostgresEventStore,
  type PostgresEventStoreOptions,
} from '@vantageedge/shared/event-store/postgres/postgres-event-store';
import type { SnapshotBus, SnapshotSubscription } from '@vantageedge/shared/snapshot-bus/port';
import { eventually } from '@vantageedge/shared/snapshot-bus/testing';
import { deleteTopicUntilGone, uniqueTopic } from '@vantageedge/shared/testing/kafka';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import { serviceNodeArgs } from '@vantageedge/shared/testing/service-bundle';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * A refold (`republish-snapshots --refold`) gives a tenant other content than its gateways hold when
 * the fold now refuses one of its events (quarantined at the event before: a lower version) or reads
 * its events differently (the same version). Gateways take only versions above the one they hold, so
 * the replicas kept serving the config from before the refold, while rollout status compared them with
 * the refolded version and called them up to date. The refolded content is published as a new version.
 */
const run = promisify(execFile);
const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const topic = uniqueTopic('refold');
const buses: SnapshotBus[] = [];
let database: TestDatabase;
let store: PostgresEventStore;
/** The log as the fixed (or stricter) fold reads it: events changed by id. */
let refoldStore: PostgresEventStore;
const readDifferently = new Map<string, (data: Record<string, unknown>) => Record<string, unknown>>();
let projector: SnapshotProjector;
let subscription: SnapshotSubscription;
const replica = new GatewayConfigStore({
  baseDomains: ['localhost'],
  createUpstreamSet: () => ({ close: async () => {} }) as never,
});

function bus(purpose: string): SnapshotBus {
  const created = onePartitionTestBus(topic, purpose);
  buses.push(created);
  return created;
}

beforeAll(async () => {
  database = await createTestDatabase();
  store = new PostgresEventStore({ pool: database.pool });
  const upcasters = {
    apply: (event: RecordedEvent) => {
      const upcast = CONTROL_PLANE_UPCASTERS.apply(event);
      const change = readDifferently.get(upcast.id);
      return change ? { ...upcast, data: change(upcast.data as Record<string, unknown>) } : upcast;
    },
  } as unknown as NonNullable<PostgresEventStoreOptions['upcasters']>;
  refoldStore = new PostgresEventStore({ pool: database.pool, upcasters });
  projector = startSnapshotProjector({
    store,
    pool: database.pool,
    bus: bus('refold-projector'),
    retryDelayMs: 50,
    publishPollMs: 100,
  });
  subscription = await bus('refold-gateway').subscribe({
    onMessage: (message) => {
      if (message.kind === 'snapshot') replica.apply(message.snapshot);
      else replica.remove(message.tenantId);
    },
    onCaughtUp: () => {},
    onHealth: () => {},
  });
}, 60_000);

afterAll(async () => {
  await subscription?.close();
  await projector?.stop();
  await Promise.all(buses.map((created) => created.close()));
  await replica.close();
  await refoldStore?.close();
  await store?.close();
  await deleteTopicUntilGone(topic).catch(() => {});
  await database?.drop();
});

async function append(stream: string, event: NewEvent): Promise<{ id: string; position: bigint }> {
  const id = randomUUID();
  const { position } = await store.appendToStream(stream, [{ ...event, id }]);
  return { id, position };
}

/** A tenant with one origin; returns its origin id. */
async function tenantWithOrigin(tenantId: string): Promise<string> {
  await append(streamName.tenant(tenantId), tenantCreated(tenantId, 'T'));
  const origin = originState(tenantId);
  await append(streamName.origin(origin.origin_id), newEvent('OriginCreated', origin));
  return origin.origin_id;
}

async function createRoute(tenantId: string, originId: string, pathPattern: string) {
  const route = routeState(tenantId, originId, { path_pattern: pathPattern });
  return { route, ...(await append(streamName.route(route.route_id), newEvent('RouteCreated', route))) };
}

/** The path patterns the replica routes for the tenant. */
function servedPaths(tenantId: string): string[] {
  return (replica.get(tenantId)?.snapshot.routes ?? []).map((route) => route.path_pattern).sort();
}

async function served(tenantId: string, position: bigint): Promise<void> {
  await eventually(
    `tenant ${tenantId} at ${position} on the replica`,
    () => (replica.appliedVersions().get(tenantId) ?? 0n) >= position,
  );
}

/** What `make republish-snapshots -- --refold` does. */
async function refold(): Promise<void> {
  await refoldSnapshots({ store: refoldStore, pool: database.pool });
  await requestSnapshotRepublish(database.pool);
  expect(await waitForSnapshotsPublished(database.pool, { timeoutMs: 30_000, pollMs: 100 })).toBe(true);
}

function rollout(tenantId: string) {
  return readRolloutStatus(
    {
      pool: database.pool,
      replicaVersions: async (id) => [
        {
          replicaId: 'gw-1',
          lastSeen: new Date(),
          appliedVersion: replica.appliedVersions().get(id) ?? null,
        },
      ],
    },
    tenantId,
  );
}

describe('refolding the gateway snapshots', () => {
  it('puts a tenant the refold quarantines back on its config from before the refused event, shown as quarantined', async () => {
    const tenant = randomUUID();
    const originId = await tenantWithOrigin(tenant);
    const { route } = await createRoute(tenant, originId, '/api/*');
    const refused = await append(
      streamName.route(route.route_id),
      newEvent('RouteUpdated', {
        ...route,
        path_pattern: '/v2/*',
        changed_fields: ['path_pattern'],
      } as never),
    );
    const later = await createRoute(tenant, originId, '/later/*');
    const other = randomUUID();
    const { position: head } = await append(streamName.tenant(other), tenantCreated(other, 'O'));
    await served(tenant, later.position);
    await served(other, head);
    expect(servedPaths(tenant)).toEqual(['/later/*', '/v2/*']);

    // The fold now refuses the update (a rate limit member the snapshot schema does not know).
    readDifferently.set(refused.id, (data) => ({
      ...data,
      rate_limit: { requests_per_second: 5, legacy_burst: true },
    }));
    await refold();

    await eventually('the replica serves the refolded config', () => servedPaths(tenant).join() === '/api/*');
    const status = await rollout(tenant);
    expect(status).toMatchObject({
      quarantined_since: refused.position.toString(),
      live_everywhere: false,
      replicas: [{ applied_version: status?.target_version, up_to_date: true }],
    });
    expect(BigInt(status!.target_version)).toBeGreaterThan(later.position);

    // Refolded again, unchanged: it keeps the version its replicas hold.
    await refold();
    expect((await rollout(tenant))?.target_version).toBe(status?.target_version);
    expect(servedPaths(tenant)).toEqual(['/api/*']);
  });

  it('gives the replicas a tenant whose events the refold reads differently at the same version', async () => {
    const tenant = randomUUID();
    const originId = await tenantWithOrigin(tenant);
    const created = await createRoute(tenant, originId, '/old/*');
    const other = randomUUID();
    const { position: head } = await append(streamName.tenant(other), tenantCreated(other, 'O'));
    await served(tenant, created.position);
    await served(other, head);

    readDifferently.set(created.id, (data) => ({ ...data, path_pattern: '/new/*' }));
    await refold();

    await eventually('the replica serves the refolded config', () => servedPaths(tenant).join() === '/new/*');
    expect(await rollout(tenant)).toMatchObject({ live_everywhere: true, quarantined_since: null });
  });

  it('changes nothing when the changed tenant has the log’s last event, and refolds after the next change', async () => {
    const tenant = randomUUID();
    const originId = await tenantWithOrigin(tenant);
    const last = await createRoute(tenant, originId, '/old/*');
    await served(tenant, last.position);

    readDifferently.set(last.id, (data) => ({ ...data, path_pattern: '/new/*' }));
    await expect(refoldSnapshots({ store: refoldStore, pool: database.pool })).rejects.toThrow(
      `the refolded snapshots of tenant(s) ${tenant} differ from the ones gateways hold`,
    );
    const { rows } = await database.pool.query<{ version: string; path: string }>(
      `select version, snapshot->'routes'->0->>'path_pattern' as path from snapshot_state where tenant_id = $1`,
      [tenant],
    );
    expect(rows).toEqual([{ version: last.position.toString(), path: '/old/*' }]);

    const other = randomUUID();
    await append(streamName.tenant(other), tenantCreated(other, 'O'));
    await refold();
    await eventually('the replica serves the refolded config', () => servedPaths(tenant).join() === '/new/*');
  });
});

describe('refolding when the fold now refuses a tenant’s creation', () => {
  /** A served tenant whose creation the stricter fold refuses (a setting its schema does not know). */
  async function tenantWithRefusedCreation() {
    const tenant = randomUUID();
    const created = await append(streamName.tenant(tenant), tenantCreated(tenant, 'Refused'));
    const origin = originState(tenant);
    await append(streamName.origin(origin.origin_id), newEvent('OriginCreated', origin));
    const route = await createRoute(tenant, origin.origin_id, '/served/*');
    const other = randomUUID();
    const { position: head } = await append(streamName.tenant(other), tenantCreated(other, 'O'));
    await served(tenant, route.position);
    await served(other, head);
    readDifferently.set(created.id, (data) => ({
      ...data,
      settings: { ...(data['settings'] as object), legacy_setting: true },
    }));
    return { tenant, created, route };
  }

  async function storedState(tenant: string) {
    const { rows } = await database.pool.query(
      'select version, status from snapshot_state where tenant_id = $1',
      [tenant],
    );
    const { rows: parked } = await database.pool.query(
      `select count(*)::int as n from projection_parked_events where projection = 'gateway_snapshots'`,
    );
    return { rows, parked: parked[0], checkpoint: await readSnapshotsPosition(database.pool) };
  }

  it('refuses to run, changing and publishing nothing, and names the tenant and the refused event', async () => {
    const { tenant, created } = await tenantWithRefusedCreation();
    const before = await storedState(tenant);

    const refused = refoldSnapshots({ store: refoldStore, pool: database.pool });
    await expect(refused).rejects.toBeInstanceOf(RefoldWouldDropTenantsError);
    await expect(refused).rejects.toThrow(
      new RegExp(
        `tenant ${tenant}: TenantCreated at position ${created.position} refused \\(.*legacy_setting`,
      ),
    );
    expect(await storedState(tenant)).toEqual(before);
    expect(servedPaths(tenant)).toEqual(['/served/*']);
    expect(await rollout(tenant)).toMatchObject({ deleted: false, quarantined_since: null });
    readDifferently.delete(created.id);
  });

  it('drops the tenant from every gateway when told to, records why, and its rollout says so', async () => {
    const { tenant, created } = await tenantWithRefusedCreation();

    const result = await refoldSnapshots({
      store: refoldStore,
      pool: database.pool,
      dropUnfoldableTenants: true,
    });
    expect(result.dropped).toEqual([
      expect.objectContaining({ tenantId: tenant, position: created.position, eventType: 'TenantCreated' }),
    ]);
    await requestSnapshotRepublish(database.pool);
    expect(await waitForSnapshotsPublished(database.pool, { timeoutMs: 30_000, pollMs: 100 })).toBe(true);

    await eventually('the replica no longer serves the tenant', () => replica.get(tenant) === undefined);
    expect(await rollout(tenant)).toMatchObject({
      deleted: true,
      quarantined_since: created.position.toString(),
      live_everywhere: false,
      replicas: [{ applied_version: null, up_to_date: true }],
    });
    const audit = (await store.readStream(streamName.tenant(tenant))).filter(
      (event) => event.type === 'TenantDroppedFromGateways',
    );
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({
      data: {
        tenant_id: tenant,
        refused_position: created.position.toString(),
        refused_event_type: 'TenantCreated',
      },
      metadata: { tenant_id: tenant },
    });
    expect((audit[0]!.data as { error: string }).error).toContain('legacy_setting');
    const readModels = startReadModelProjector({ store, pool: database.pool });
    try {
      const audited = async () =>
        (
          await database.pool.query(
            `select actor, resource_type from read_models.audit_log
             where tenant_id = $1 and event_type = 'TenantDroppedFromGateways'`,
            [tenant],
          )
        ).rows;
      const deadline = Date.now() + 20_000;
      while ((await audited()).length === 0 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(await audited()).toEqual([{ actor: 'system:snapshot-refold', resource_type: 'tenant' }]);
    } finally {
      await readModels.stop();
    }

    // Refolded again (the fold as strict), without the option: the tenant stays dropped, nothing refused.
    const tombstone = await storedState(tenant);
    const again = await refoldSnapshots({ store: refoldStore, pool: database.pool });
    expect(again.dropped).toEqual([]);
    expect((await storedState(tenant)).rows).toEqual(tombstone.rows);

    // The fold fixed: a refold gives the tenant its snapshot back, above the tombstone.
    readDifferently.delete(created.id);
    const other = randomUUID();
    await append(streamName.tenant(other), tenantCreated(other, 'O'));
    await refold();
    await eventually('the replica serves the tenant again', () => servedPaths(tenant).join() === '/served/*');
    expect(await rollout(tenant)).toMatchObject({
      deleted: false,
      quarantined_since: null,
      live_everywhere: true,
    });
  });

  // Regression: the drop was recorded before the refold, which could then fail: the audit log showed a
  // drop that did not happen, and nothing said otherwise.
  it('a refold that fails after recording a drop records that the drop did not happen, changing nothing', async () => {
    const { tenant, created, route } = await tenantWithRefusedCreation();
    const before = await storedState(tenant);
    // The log cannot be read once the drop is recorded (the event store went away mid-refold).
    let appended = false;
    const failingStore = new Proxy(refoldStore, {
      get(target, property) {
        if (property === 'appendToStream')
          return async (...args: Parameters<PostgresEventStore['appendToStream']>) => {
            const result = await target.appendToStream(...args);
            appended = true;
            return result;
          };
        if (property === 'readAll')
          return async (...args: Parameters<PostgresEventStore['readAll']>) => {
            if (appended) throw new Error('the event store is unreachable');
            return target.readAll(...args);
          };
        const value = Reflect.get(target, property, target) as unknown;
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    try {
      await expect(
        refoldSnapshots({ store: failingStore, pool: database.pool, dropUnfoldableTenants: true }),
      ).rejects.toThrow('the event store is unreachable');
    } finally {
      readDifferently.delete(created.id);
    }

    // The running projector folds past the recorded events (they change no snapshot): only its
    // checkpoint moves.
    expect((await storedState(tenant)).rows).toEqual(before.rows);
    expect(servedPaths(tenant)).toEqual(['/served/*']);
    const events = await store.readStream(streamName.tenant(tenant));
    const drop = events.find((event) => event.type === 'TenantDroppedFromGateways');
    expect(events.map((event) => event.type)).toEqual([
      'TenantCreated',
      'TenantDroppedFromGateways',
      'TenantDropRolledBack',
    ]);
    expect(events.at(-1)).toMatchObject({
      data: { tenant_id: tenant, drop_position: drop?.position.toString() },
      metadata: { actor: 'system:snapshot-refold', tenant_id: tenant, causation_id: drop?.id },
    });
    expect((events.at(-1)!.data as { error: string }).error).toContain('the event store is unreachable');
    expect(await rollout(tenant)).toMatchObject({ deleted: false, quarantined_since: null });
    expect(route.position).toBeLessThan(drop!.position);
  });

  it('records no roll-back of a drop whose refold committed although its answer was lost', async () => {
    const { tenant, created } = await tenantWithRefusedCreation();
    try {
      await refoldSnapshots({ store: refoldStore, pool: database.pool, dropUnfoldableTenants: true });
    } finally {
      readDifferently.delete(created.id);
    }
    const drop = (await store.readStream(streamName.tenant(tenant))).at(-1)!;
    expect(drop.type).toBe('TenantDroppedFromGateways');
    const recorded = new Map([
      [
        tenant,
        {
          position: drop.position,
          occurredAt: drop.metadata.occurred_at,
          eventId: drop.id,
          correlationId: drop.metadata.correlation_id,
        },
      ],
    ]);
    const unsettled = await rollBackDrops(
      store,
      database.pool,
      recorded,
      new Error('connection lost during commit'),
      'system:snapshot-refold',
    );
    expect(unsettled).toEqual([]);
    expect((await store.readStream(streamName.tenant(tenant))).map((event) => event.type)).toEqual([
      'TenantCreated',
      'TenantDroppedFromGateways',
    ]);
  });

  it('shows a tenant whose creation the running projector refused as quarantined with no snapshot, not as unknown', async () => {
    const tenant = randomUUID();
    const event = tenantCreated(tenant, 'Never served');
    const created = await append(streamName.tenant(tenant), {
      ...event,
      // A setting this release's snapshot schema does not know (written by a newer control plane).
      data: { ...event.data, settings: { ...(event.data as TenantState).settings, legacy_setting: true } },
    });
    const other = randomUUID();
    const { position: head } = await append(streamName.tenant(other), tenantCreated(other, 'O'));
    await served(other, head);

    expect(await rollout(tenant)).toMatchObject({
      target_version: '0',
      deleted: true,
      quarantined_since: created.position.toString(),
      live_everywhere: false,
      replicas: [{ applied_version: null, up_to_date: true }],
    });
  });

  // Regression: refused as a tenant the gateways serve (and, told to drop it, recorded as dropped).
  it('gives a served tenant deleted since the snapshot projector last ran its tombstone, refusing and recording no drop', async () => {
    const { tenant, created } = await tenantWithRefusedCreation();
    // The snapshot projector is stopped (an upgrade) when the tenant's owner deletes it.
    await projector.stop();
    try {
      const deleted = await append(
        streamName.tenant(tenant),
        newEvent('TenantDeleted', { tenant_id: tenant }),
      );

      const result = await refoldSnapshots({ store: refoldStore, pool: database.pool });
      expect(result.dropped).toEqual([]);
      expect((await storedState(tenant)).rows).toEqual([
        { version: deleted.position.toString(), status: 'deleted' },
      ]);
      const types = (await store.readStream(streamName.tenant(tenant))).map((event) => event.type);
      expect(types).not.toContain('TenantDroppedFromGateways');
    } finally {
      readDifferently.delete(created.id);
      projector = startSnapshotProjector({
        store,
        pool: database.pool,
        bus: bus('refold-projector-again'),
        retryDelayMs: 50,
        publishPollMs: 100,
      });
    }
    await requestSnapshotRepublish(database.pool);
    expect(await waitForSnapshotsPublished(database.pool, { timeoutMs: 30_000, pollMs: 100 })).toBe(true);
    await eventually('the replica no longer serves the tenant', () => replica.get(tenant) === undefined);
  });

  /** `make refold-snapshots` as an operator runs it: rejects with its exit code and output on a failure. */
  function refoldCli(...args: string[]) {
    return run(
      process.execPath,
      [...serviceNodeArgs('projections/src/snapshots/republish-cli.ts'), '--refold', ...args],
      {
        cwd: REPO_ROOT,
        env: { ...process.env, DATABASE_URL: database.url, REPUBLISH_TIMEOUT_SECONDS: '60' },
      },
    );
  }

  it('the CLI refuses with exit 1 naming the tenant and the option, and drops it when given the option', async () => {
    const tenant = randomUUID();
    const created = await append(streamName.tenant(tenant), tenantCreated(tenant, 'Stored'));
    const origin = originState(tenant);
    await append(streamName.origin(origin.origin_id), newEvent('OriginCreated', origin));
    const route = await createRoute(tenant, origin.origin_id, '/served/*');
    await served(tenant, route.position);
    // What an older release stored and this release's fold refuses: a setting it does not know.
    await database.pool.query(
      `update event_store_events set data = jsonb_set(data, '{settings,legacy_setting}', 'true') where id = $1`,
      [created.id],
    );
    const before = await storedState(tenant);

    const refused = await refoldCli().then(
      () => null,
      (error: { code: number; stdout: string; stderr: string }) => error,
    );
    expect(refused?.code).toBe(1);
    expect(refused?.stderr).toContain(
      `tenant ${tenant}: TenantCreated at position ${created.position} refused`,
    );
    expect(refused?.stderr).toContain('Nothing was changed');
    expect(refused?.stderr).toContain('--drop-unfoldable-tenants');
    expect(refused?.stdout).not.toContain('queued');
    expect(await storedState(tenant)).toEqual(before);

    const { stdout } = await refoldCli('--drop-unfoldable-tenants');
    expect(stdout).toContain(
      `tenant ${tenant} dropped from every gateway (its TenantCreated at position ${created.position} refused)`,
    );
    expect(stdout).toContain('every snapshot is on the topic again');
    await eventually('the replica no longer serves the tenant', () => replica.get(tenant) === undefined);
  });
});
