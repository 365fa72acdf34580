import type { UserState } from '@vantageedge/shared/domain/events';
import { tenantSettings } from '@vantageedge/shared/domain/gateway-config';
import { InMemoryEventStore } from '@vantageedge/shared/event-store/in-memory/in-memory-event-store';
import type { EventStore } from '@vantageedge/shared/event-store/port';
import { describe, expect, it } from 'vitest';
import { memberOf, tenantDecider } from '../domain/tenant.js';
import { rehearsalStore } from './rehearsal-store.js';
import { createStreamFolds } from './stream-folds.js';

const STREAM = 'tenant-t1';
const metadata = {
  actor: 'user_platform',
  tenant_id: 't1',
  correlation_id: 'r',
  causation_id: null,
  occurred_at: '2026-01-01T00:00:00.000Z',
  schema_version: 1,
};
const member = (n: number): UserState => ({
  user_id: `u${n}`,
  tenant_id: 't1',
  clerk_user_id: `user_${n}`,
  email: `${n}@example.com`,
  role: 'owner',
});
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
const userCreated = (n: number) => ({ type: 'UserCreated', data: member(n), metadata });
const userDeleted = (n: number) => ({
  type: 'UserDeleted',
  data: { user_id: `u${n}`, tenant_id: 't1' },
  metadata,
});

/** Events of `stream` the store hands out. */
function counting(store: EventStore, stream: string) {
  const read = { events: 0 };
  const counted: EventStore = Object.create(store);
  counted.readStream = async (name, options) => {
    const events = await store.readStream(name, options);
    if (name === stream) read.events += events.length;
    return events;
  };
  return { store: counted, read };
}

describe('stream folds of one apply', () => {
  it('reads only what was appended since the fold it keeps, and sees appends by other commands', async () => {
    const real = new InMemoryEventStore();
    await real.appendToStream(STREAM, [created, ...Array.from({ length: 50 }, (_, n) => userCreated(n))]);
    const { store, read } = counting(real, STREAM);
    const folds = createStreamFolds();

    expect(memberOf(await folds.fold(store, STREAM, tenantDecider), 'u3').status).toBe('active');
    for (let step = 0; step < 100; step++) await folds.fold(store, STREAM, tenantDecider);
    expect(read.events).toBe(51);

    // A member removed without the config lock: the next check sees it.
    await real.appendToStream(STREAM, [userDeleted(3)]);
    expect(memberOf(await folds.fold(store, STREAM, tenantDecider), 'u3').status).toBe('deleted');
    expect(read.events).toBe(52);
  });

  it('keeps the rehearsal’s folds apart from the real store’s', async () => {
    const real = new InMemoryEventStore();
    await real.appendToStream(STREAM, [created, userCreated(1)]);
    const rehearsal = rehearsalStore(real);
    const folds = createStreamFolds();
    await folds.fold(real, STREAM, tenantDecider);
    await folds.fold(rehearsal, STREAM, tenantDecider);
    await rehearsal.appendToStream(STREAM, [userDeleted(1)], { expectedRevision: 1n });
    expect(memberOf(await folds.fold(rehearsal, STREAM, tenantDecider), 'u1').status).toBe('deleted');
    expect(memberOf(await folds.fold(real, STREAM, tenantDecider), 'u1').status).toBe('active');
  });

  it('folds another stream on from the process’s kept fold of it (aggregate-folds.ts)', async () => {
    const real = new InMemoryEventStore();
    await real.appendToStream('tenant-t2', [created, userCreated(1)]);
    const { store, read } = counting(real, 'tenant-t2');
    const folds = createStreamFolds();
    await folds.fold(store, 'tenant-t2', tenantDecider);
    await real.appendToStream('tenant-t2', [userDeleted(1)]);
    expect(memberOf(await folds.fold(store, 'tenant-t2', tenantDecider), 'u1').status).toBe('deleted');
    expect(read.events).toBe(3);
  });
});
