import { randomBytes, randomUUID } from 'node:crypto';
import {
  type ApiResponse,
  type ControlPlaneHarness,
  json,
  startControlPlane,
} from '@vantageedge/control-plane/testing/control-plane-harness';
import { GatewayConfigStore } from '@vantageedge/gateway/config/gateway-config-store';
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
import type { SnapshotSubscription } from '@vantageedge/shared/snapshot-bus/port';
import { eventually } from '@vantageedge/shared/snapshot-bus/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * A host released by a tenant whose snapshots the bus refuses (too large) goes to the next tenant at
 * once. Every replica keeps that tenant's last published snapshot, which still claims the host; the new
 * owner's claim is later than that whole snapshot, so the replicas route the host to the new owner as
 * soon as its snapshot arrives. The control plane used to answer 409 `still served to another tenant`
 * until the release was published: for good while the former holder stayed too large, so a domain a
 * platform admin took from such a tenant could never be given to its rightful owner. Which tenant a
 * replica picks whatever order it applies the two snapshots in: services/gateway/src/tls/moved-hosts.int.test.ts.
 */
const BUS_BYTES = 64 * 1024;

let cp: ControlPlaneHarness;
let projector: SnapshotProjector;
const bus = createInMemorySnapshotBus({ maxMessageBytes: BUS_BYTES });
const subscriptions: SnapshotSubscription[] = [];

/** A gateway replica's host resolution, fed by the snapshot bus from its beginning. */
async function replica(): Promise<GatewayConfigStore> {
  const store = new GatewayConfigStore({
    baseDomains: ['localhost'],
    createUpstreamSet: () => ({ close: async () => {} }) as never,
  });
  subscriptions.push(
    await bus.subscribe({
      onMessage: (message) => {
        if (message.kind === 'snapshot') store.apply(message.snapshot);
        else store.remove(message.tenantId);
      },
      onCaughtUp: () => {},
      onHealth: () => {},
    }),
  );
  return store;
}

beforeAll(async () => {
  cp = await startControlPlane({
    snapshotBudget: {
      maxMessageBytes: BUS_BYTES,
      maxDecodedBytes: MAX_DECODED_SNAPSHOT_BYTES,
      percent: 75,
      maxJsonBytes: MAX_DECODED_SNAPSHOT_BYTES,
    },
  });
  projector = startSnapshotProjector({ store: cp.store, pool: cp.db.pool, bus, publishPollMs: 100 });
});
afterAll(async () => {
  for (const subscription of subscriptions) await subscription.close();
  await projector?.stop();
  await cp?.close();
});

const post = (path: string, body: unknown) => cp.request('POST', path, { body });
const positionOf = (response: ApiResponse) => response.headers.get('x-event-position') ?? '';

async function tenant(name: string, subdomain = `${name}-${randomUUID().slice(0, 8)}`): Promise<string> {
  const created = await post('/api/v1/tenants', { name, subdomain });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  await settled(json(created)['id'] as string, positionOf(created));
  return json(created)['id'] as string;
}

const state = (tenantId: string) => snapshotStateOf(cp.db.pool, tenantId);
const settled = (tenantId: string, position: string) => snapshotSettled(cp.db.pool, tenantId, position);

/** Appends origins past every command's checks until the bus refuses the tenant's snapshot. */
async function outgrowTheBus(tenantId: string): Promise<void> {
  const longUrl = () => `https://o.example.com/${randomBytes(1500).toString('base64url').slice(0, 1975)}`;
  let last = 0n;
  for (let index = 0; index < 6; index += 1) {
    const targets = Array.from({ length: 10 }, () => ({ url: longUrl(), weight: 1 }));
    const origin = { ...originState(tenantId), name: `big${index}`, targets };
    const appended = await cp.store.appendToStream(streamName.origin(origin.origin_id), [
      newEvent('OriginCreated', origin),
    ]);
    last = appended.position;
  }
  await settled(tenantId, String(last));
  await expectRefusedByTheBus(tenantId);
}

async function expectRefusedByTheBus(tenantId: string): Promise<void> {
  const row = await state(tenantId);
  expect(row?.failed_version).toBe(row?.version);
}

async function expectPublished(tenantId: string, position: string): Promise<void> {
  await settled(tenantId, position);
  const row = await state(tenantId);
  expect(row?.published_version).toBe(row?.version);
}

describe('a host released by a tenant whose snapshots the bus refuses', () => {
  it('is given at once to a tenant it is assigned to or created with, and the replicas route it there', async () => {
    const holderSubdomain = `holder-${randomUUID().slice(0, 8)}`;
    const holder = await tenant('holder', holderSubdomain);
    const other = await tenant('other');
    const early = await replica();
    const domain = `shop-${randomUUID().slice(0, 8)}.example.com`;
    const assigned = await post(`/api/v1/tenants/${holder}/domains`, { domain, verified: true });
    expect(assigned.status, JSON.stringify(assigned.body)).toBe(201);
    await expectPublished(holder, positionOf(assigned));
    await eventually(
      'the replica routes the domain to its holder',
      () => early.resolveHost(domain)?.id === holder,
    );

    await outgrowTheBus(holder);
    const released = await cp.request('DELETE', `/api/v1/tenants/${holder}/domains/${domain}`);
    expect(released.status).toBe(204);
    // A shorter name: the snapshot does not grow, so the rename is allowed although over the budget.
    const renamed = await cp.request('PATCH', `/api/v1/tenants/${holder}`, {
      body: { subdomain: `h-${randomUUID().slice(0, 8)}` },
    });
    expect(renamed.status, JSON.stringify(renamed.body)).toBe(200);
    await settled(holder, positionOf(renamed));
    await expectRefusedByTheBus(holder);

    const given = await post(`/api/v1/tenants/${other}/domains`, { domain, verified: true });
    expect(given.status, JSON.stringify(given.body)).toBe(201);
    await expectPublished(other, positionOf(given));
    const created = await post('/api/v1/tenants', { name: 'newcomer', subdomain: holderSubdomain });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const newcomer = json(created)['id'] as string;
    await expectPublished(newcomer, positionOf(created));

    await eventually('the replica routes both hosts to their new owners', () => {
      return (
        early.resolveHost(domain)?.id === other &&
        early.resolveHost(`${holderSubdomain}.localhost`)?.id === newcomer
      );
    });
    // It still holds the holder's last published snapshot, which claims both.
    const stale = early.get(holder)?.snapshot;
    expect(stale?.custom_domains.map((entry) => entry.domain)).toContain(domain);
    expect(stale?.tenant.subdomain).toBe(holderSubdomain);
    // So does a replica that starts now and reads the compacted log.
    bus.log.compact();
    const late = await replica();
    await eventually('a new replica routes both hosts to their new owners', () => {
      return (
        late.resolveHost(domain)?.id === other &&
        late.resolveHost(`${holderSubdomain}.localhost`)?.id === newcomer
      );
    });
    expect(late.get(holder)?.snapshot.tenant.subdomain).toBe(holderSubdomain);
  });

  it('is given at once to a tenant renamed to it', async () => {
    const subdomain = `holder-${randomUUID().slice(0, 8)}`;
    const holder = await tenant('holder', subdomain);
    const replicaOf = await replica();
    const host = `${subdomain}.localhost`;
    await eventually(
      'the replica routes the subdomain to its holder',
      () => replicaOf.resolveHost(host)?.id === holder,
    );
    await outgrowTheBus(holder);
    const released = await cp.request('PATCH', `/api/v1/tenants/${holder}`, {
      body: { subdomain: `h-${randomUUID().slice(0, 8)}` },
    });
    expect(released.status, JSON.stringify(released.body)).toBe(200);
    await settled(holder, positionOf(released));
    await expectRefusedByTheBus(holder);

    const other = await tenant('other');
    const renamed = await cp.request('PATCH', `/api/v1/tenants/${other}`, { body: { subdomain } });
    expect(renamed.status, JSON.stringify(renamed.body)).toBe(200);
    await expectPublished(other, positionOf(renamed));
    await eventually(
      'the replica routes the subdomain to the renamed tenant',
      () => replicaOf.resolveHost(host)?.id === other,
    );
    expect(replicaOf.get(holder)?.snapshot.tenant.subdomain).toBe(subdomain);
  });
});
