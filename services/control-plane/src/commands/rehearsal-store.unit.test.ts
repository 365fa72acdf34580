import { InMemoryEventStore } from '@vantageedge/shared/event-store/in-memory/in-memory-event-store';
import {
  type EventMetadata,
  UniquenessViolationError,
  WrongExpectedRevisionError,
} from '@vantageedge/shared/event-store/port';
import { describe, expect, it } from 'vitest';
import { rehearsalStore } from './rehearsal-store.js';

const metadata: EventMetadata = {
  actor: 'user_test',
  tenant_id: null,
  correlation_id: 'req-1',
  causation_id: null,
  occurred_at: '2026-01-01T00:00:00.000Z',
  schema_version: 1,
};
const event = (type: string) => ({ type, data: { type }, metadata });

describe('rehearsal store', () => {
  it('reads its appends with the real events, and never writes the real store', async () => {
    const real = new InMemoryEventStore();
    await real.appendToStream('s-1', [event('A')]);
    const rehearsal = rehearsalStore(real);
    const appended = await rehearsal.appendToStream('s-1', [event('B'), event('C')], {
      expectedRevision: 0n,
    });
    expect(appended).toEqual({ nextExpectedRevision: 2n, position: 3n });
    expect((await rehearsal.readStream('s-1')).map((e) => [e.type, e.revision])).toEqual([
      ['A', 0n],
      ['B', 1n],
      ['C', 2n],
    ]);
    expect(
      (await rehearsal.readStream('s-1', { direction: 'backwards', maxCount: 2 })).map((e) => e.type),
    ).toEqual(['C', 'B']);
    expect(await rehearsal.headPosition()).toBe(3n);
    expect((await real.readStream('s-1')).map((e) => e.type)).toEqual(['A']);
    expect(await real.headPosition()).toBe(1n);
  });

  it('reads on from a revision through its appends and the real store’s, as a whole read would', async () => {
    const real = new InMemoryEventStore();
    await real.appendToStream('s-1', [event('A'), event('B')]);
    const rehearsal = rehearsalStore(real);
    expect((await rehearsal.readStream('s-1', { fromRevision: 1n })).map((e) => e.type)).toEqual(['B']);
    await rehearsal.appendToStream('s-1', [event('C')], { expectedRevision: 1n });
    expect(
      (await rehearsal.readStream('s-1', { fromRevision: 1n })).map((e) => [e.type, e.revision]),
    ).toEqual([
      ['B', 1n],
      ['C', 2n],
    ]);
    expect((await rehearsal.readStream('s-1', { fromRevision: 3n })).map((e) => e.type)).toEqual([]);
  });

  it('refuses a stale expected revision and a value another stream holds, as the real store does', async () => {
    const real = new InMemoryEventStore();
    await real.appendToStream('tenant-1', [event('A')], { reservations: { claim: ['subdomain:acme'] } });
    const rehearsal = rehearsalStore(real);
    await expect(
      rehearsal.appendToStream('s-2', [event('B')], { expectedRevision: 0n }),
    ).rejects.toBeInstanceOf(WrongExpectedRevisionError);
    await expect(
      rehearsal.appendToStream('tenant-2', [event('B')], { reservations: { claim: ['subdomain:acme'] } }),
    ).rejects.toBeInstanceOf(UniquenessViolationError);

    // Released in the rehearsal: free there (and only there).
    await rehearsal.appendToStream('tenant-1', [event('C')], {
      reservations: { release: ['subdomain:acme'] },
    });
    await rehearsal.appendToStream('tenant-2', [event('D')], { reservations: { claim: ['subdomain:acme'] } });
    expect(await rehearsal.reservationHolder('subdomain:acme')).toBe('tenant-2');
    expect(await real.reservationHolder('subdomain:acme')).toBe('tenant-1');
  });
});
