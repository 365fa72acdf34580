import { tenantSettings } from '@vantageedge/shared/domain/gateway-config';
import { InMemoryEventStore } from '@vantageedge/shared/event-store/in-memory/in-memory-event-store';
import type { EventStore } from '@vantageedge/shared/event-store/port';
import { describe, expect, it } from 'vitest';
import { memberOf, tenantDecider } from '../domain/tenant.js';
import { createAggregateFolds } from './aggregate-folds.js';
import { fold } from './handle-command.js';
import { rehearsalStore } from './rehearsal-store.js';

const STREAM = 'tenant-t1';
const metadata = {
  actor: 'user_platform',
  tenant_id: 't1',
  correlation_id: 'r',
  causation_id: null,
  occurred_at: '2026-01-01T00:00:00.000Z',
  schema_version: 1,
};
const created = {
  type: 'TenantCreated',
  data: {
    tenant_id: 't1',
    name: 'acme',
    subdomain: 'acme',
    clerk_org_id: null,
    settings: tenantSettings.parse({}),
  },
  metadata,
};
const userCreated = (n: number) => ({
  type: 'UserCreated',
  data: {
    user_id: `u${n}`,
    tenant_id: 't1',
    clerk_user_id: `user_${n}`,
    email: `${n}@example.com`,
    role: 'admin',
  },
  metadata,
});
const userDeleted = (n: number) => ({
  type: 'UserDeleted',
  data: { user_id: `u${n}`, tenant_id: 't1' },
  metadata,
});

/** The events each read of the store hands out, read by read. */
function counting(store: EventStore) {
  const reads: number[] = [];
  const counted: EventStore = Object.create(store);
  counted.readStream = async (name, options) => {
    const events = await store.readStream(name, options);
    reads.push(events.length);
    return events;
  };
  return { store: counted, reads };
}

describe('the folds of the control plane’s streams', () => {
  it('folds a new stream a page at a time, then only what was appended since, as a whole fold would', async () => {
    const real = new InMemoryEventStore();
    await real.appendToStream(STREAM, [created, ...Array.from({ length: 24 }, (_, n) => userCreated(n))]);
    const { store, reads } = counting(real);
    const folds = createAggregateFolds({ pageEvents: 10 });

    const first = await folds.fold(store, STREAM, tenantDecider);
    expect(reads).toEqual([10, 10, 5]);
    expect(first.revision).toBe(24n);
    expect(first.state).toEqual(fold(tenantDecider, await real.readStream(STREAM)));

    reads.length = 0;
    await real.appendToStream(STREAM, [userDeleted(3)]);
    const next = await folds.fold(store, STREAM, tenantDecider);
    expect(reads).toEqual([1]);
    expect(next.revision).toBe(25n);
    expect(memberOf(next.state, 'u3').status).toBe('deleted');
    // The state handed out before is unchanged: states are shared, never changed in place.
    expect(memberOf(first.state, 'u3').status).toBe('active');
    expect(next.state).toEqual(fold(tenantDecider, await real.readStream(STREAM)));
  });

  it('answers the initial state for a stream that does not exist, and keeps stores apart', async () => {
    const real = new InMemoryEventStore();
    const folds = createAggregateFolds();
    expect(await folds.fold(real, STREAM, tenantDecider)).toEqual({
      state: tenantDecider.initialState(),
      revision: null,
      position: null,
    });
    await real.appendToStream(STREAM, [created, userCreated(1)]);
    const rehearsal = rehearsalStore(real);
    await folds.fold(real, STREAM, tenantDecider);
    await rehearsal.appendToStream(STREAM, [userDeleted(1)], { expectedRevision: 1n });
    expect(memberOf((await folds.fold(rehearsal, STREAM, tenantDecider)).state, 'u1').status).toBe('deleted');
    expect(memberOf((await folds.fold(real, STREAM, tenantDecider)).state, 'u1').status).toBe('active');
  });

  // Regression: a stream that does not exist took a place among the kept folds. A plan names any ids it
  // likes, and each id that is not live is a read of its stream: a viewer's documents of made-up ids
  // pushed out the folds every tenant's commands keep, which then folded their streams from the start.
  it('keeps no place for a stream that does not exist: the folds kept stay', async () => {
    const real = new InMemoryEventStore();
    await real.appendToStream(STREAM, [created, userCreated(1)]);
    const { store, reads } = counting(real);
    const folds = createAggregateFolds({ maxStreams: 2 });
    await folds.fold(store, STREAM, tenantDecider);
    for (let n = 0; n < 5; n++) await folds.fold(store, `route-made-up-${n}`, tenantDecider);
    reads.length = 0;
    await real.appendToStream(STREAM, [userDeleted(1)]);
    expect(memberOf((await folds.fold(store, STREAM, tenantDecider)).state, 'u1').status).toBe('deleted');
    // Read on from the fold kept: only the event appended since.
    expect(reads).toEqual([1]);
  });

  it('reads a rehearsal’s stream a page at a time too, its own appends after the real ones', async () => {
    const real = new InMemoryEventStore();
    await real.appendToStream(STREAM, [created, ...Array.from({ length: 14 }, (_, n) => userCreated(n))]);
    const rehearsal = rehearsalStore(real);
    await rehearsal.appendToStream(STREAM, [userDeleted(13)], { expectedRevision: 14n });
    const folded = await createAggregateFolds({ pageEvents: 4 }).fold(rehearsal, STREAM, tenantDecider);
    expect(folded.revision).toBe(15n);
    expect(memberOf(folded.state, 'u13').status).toBe('deleted');
    expect(memberOf(folded.state, 'u12').status).toBe('active');
  });
});
