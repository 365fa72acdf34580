import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueSuffix } from '../testing/infrastructure.js';
import {
  type EventMetadata,
  type EventStore,
  type NewEvent,
  type RecordedEvent,
  type Subscription,
  UniquenessViolationError,
  WrongExpectedRevisionError,
} from './port.js';
import { UpcasterRegistry } from './upcasting.js';

/**
 * The one contract every EventStore adapter must pass. Tests use their own stream names and
 * reservation values and read the global log relative to the head they saw first, so the suite
 * also works against a shared server that already holds events (EventStoreDB).
 */
export interface ContractHarness {
  createStore(options?: { upcasters?: UpcasterRegistry }): EventStore;
  cleanup(): Promise<void>;
}

export function eventStoreContract(
  name: string,
  setup: () => Promise<ContractHarness>,
  { skip = false }: { skip?: boolean } = {},
): void {
  (skip ? describe.skip : describe)(name, () => {
    let harness: ContractHarness;
    let store: EventStore;

    beforeAll(async () => {
      harness = await setup();
      store = harness.createStore();
    });
    afterAll(async () => {
      await store?.close();
      await harness?.cleanup();
    });

    describe('appendToStream and readStream', () => {
      it('records events with revisions from 0, increasing positions and the full envelope', async () => {
        const stream = streamName('tenant');
        const id = randomUUID();
        const meta = metadata({ actor: 'user_1', tenant_id: 't1', causation_id: 'cmd-1' });
        const result = await store.appendToStream(
          stream,
          [
            {
              id,
              type: 'TenantCreated',
              data: { name: 'Acme', nested: { tags: ['a', 'b'], n: 1.5 } },
              metadata: meta,
            },
            { type: 'TenantRenamed', data: { name: 'Acme 2' }, metadata: meta },
          ],
          { expectedRevision: 'no_stream' },
        );
        expect(result.nextExpectedRevision).toBe(1n);

        const events = await store.readStream(stream);
        expect(events.map((e) => e.revision)).toEqual([0n, 1n]);
        expect(events[0]).toMatchObject({
          id,
          type: 'TenantCreated',
          stream,
          data: { name: 'Acme', nested: { tags: ['a', 'b'], n: 1.5 } },
          metadata: meta,
        });
        expect(events[1]?.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
        expect(events[1]!.position).toBeGreaterThan(events[0]!.position);
        expect(result.position).toBe(events[1]!.position);
      });

      it('continues a stream at the next revision', async () => {
        const stream = streamName('route');
        await append(store, stream, ['A'], 'no_stream');
        const second = await append(store, stream, ['B', 'C'], 0n);
        expect(second.nextExpectedRevision).toBe(2n);
        expect((await store.readStream(stream)).map((e) => [e.type, e.revision])).toEqual([
          ['A', 0n],
          ['B', 1n],
          ['C', 2n],
        ]);
      });

      it('returns [] for a stream that does not exist', async () => {
        expect(await store.readStream(streamName('missing'))).toEqual([]);
      });

      it('reads from a revision, backwards and with maxCount', async () => {
        const stream = streamName('origin');
        await append(store, stream, ['E0', 'E1', 'E2', 'E3', 'E4'], 'no_stream');
        const types = (events: RecordedEvent[]) => events.map((e) => e.type);
        expect(types(await store.readStream(stream, { fromRevision: 2n }))).toEqual(['E2', 'E3', 'E4']);
        expect(types(await store.readStream(stream, { fromRevision: 1n, maxCount: 2 }))).toEqual([
          'E1',
          'E2',
        ]);
        expect(types(await store.readStream(stream, { direction: 'backwards' }))).toEqual([
          'E4',
          'E3',
          'E2',
          'E1',
          'E0',
        ]);
        expect(types(await store.readStream(stream, { direction: 'backwards', maxCount: 1 }))).toEqual([
          'E4',
        ]);
        expect(types(await store.readStream(stream, { direction: 'backwards', fromRevision: 2n }))).toEqual([
          'E2',
          'E1',
          'E0',
        ]);
        expect(await store.readStream(stream, { fromRevision: 5n })).toEqual([]);
        expect(await store.readStream(stream, { fromRevision: 'end' })).toEqual([]);
      });

      it('keeps streams apart', async () => {
        const a = streamName('a');
        const b = streamName('b');
        await append(store, a, ['A0'], 'no_stream');
        await append(store, b, ['B0'], 'no_stream');
        await append(store, a, ['A1'], 0n);
        expect((await store.readStream(a)).map((e) => e.type)).toEqual(['A0', 'A1']);
        expect((await store.readStream(b)).map((e) => e.type)).toEqual(['B0']);
      });
    });

    describe('stored size', () => {
      it('reports each event’s stored bytes, about its data’s and metadata’s JSON, on every read path', async () => {
        const stream = streamName('sized');
        const start = await store.headPosition();
        // 'é' is two bytes in UTF-8: the size is counted in bytes, not characters.
        const small = newEvent('Small', { name: 'a' });
        const large = newEvent('Large', { name: 'é'.repeat(10_000) });
        await store.appendToStream(stream, [small, large]);
        const jsonLength = (event: NewEvent) =>
          Buffer.byteLength(JSON.stringify(event.data)) + Buffer.byteLength(JSON.stringify(event.metadata));
        const expectSized = (events: RecordedEvent[]) => {
          expect(events.map((e) => e.type)).toEqual(['Small', 'Large']);
          const [smallRead, largeRead] = events as [RecordedEvent, RecordedEvent];
          for (const [read, written] of [
            [smallRead, small],
            [largeRead, large],
          ] as const) {
            // A store may keep JSON text with a space after each colon and comma.
            expect(read.storedBytes).toBeGreaterThanOrEqual(jsonLength(written));
            expect(read.storedBytes).toBeLessThan(jsonLength(written) * 1.1 + 16);
          }
          expect(largeRead.storedBytes - smallRead.storedBytes).toBeGreaterThanOrEqual(19_999);
        };
        expectSized(await store.readStream(stream));
        expectSized((await store.readAll({ fromPosition: start })).filter((e) => e.stream === stream));
        const subscription = store.subscribeToAll({ fromPosition: start });
        try {
          expectSized(await collect(subscription, (e) => e.stream === stream, 2));
        } finally {
          await subscription.close();
        }
      });
    });

    describe('expectedRevision', () => {
      it('no_stream fails on an existing stream and reports its revision', async () => {
        const stream = streamName('ns');
        await append(store, stream, ['A', 'B'], 'no_stream');
        const error = await append(store, stream, ['C'], 'no_stream').catch((e: unknown) => e);
        expect(error).toBeInstanceOf(WrongExpectedRevisionError);
        expect(error).toMatchObject({ stream, expected: 'no_stream', actual: 1n });
      });

      it('a stale revision fails, reports the actual one and writes nothing', async () => {
        const stream = streamName('stale');
        await append(store, stream, ['A', 'B', 'C'], 'no_stream');
        const head = await store.headPosition();
        const error = await append(store, stream, ['X', 'Y'], 1n).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(WrongExpectedRevisionError);
        expect(error).toMatchObject({ expected: 1n, actual: 2n });
        expect((await store.readStream(stream)).map((e) => e.type)).toEqual(['A', 'B', 'C']);
        expect(await store.headPosition()).toBe(head);
      });

      it('a revision on a missing stream fails with actual no_stream', async () => {
        const error = await append(store, streamName('none'), ['A'], 0n).catch((e: unknown) => e);
        expect(error).toMatchObject({ name: 'WrongExpectedRevisionError', actual: 'no_stream' });
      });

      it('stream_exists needs the stream to exist', async () => {
        const stream = streamName('exists');
        const error = await append(store, stream, ['A'], 'stream_exists').catch((e: unknown) => e);
        expect(error).toMatchObject({ name: 'WrongExpectedRevisionError', actual: 'no_stream' });
        await append(store, stream, ['A'], 'no_stream');
        expect((await append(store, stream, ['B'], 'stream_exists')).nextExpectedRevision).toBe(1n);
      });

      it('any appends whatever the state, and is the default', async () => {
        const stream = streamName('any');
        await append(store, stream, ['A'], 'any');
        await append(store, stream, ['B'], 'any');
        await store.appendToStream(stream, [newEvent('C')]);
        expect((await store.readStream(stream)).map((e) => e.revision)).toEqual([0n, 1n, 2n]);
      });

      it('of concurrent appends at the same revision exactly one wins', async () => {
        const stream = streamName('race');
        await append(store, stream, ['Start'], 'no_stream');
        const results = await Promise.allSettled(
          Array.from({ length: 8 }, (_, i) => append(store, stream, [`Writer${i}`], 0n)),
        );
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
        for (const r of results.filter((r) => r.status === 'rejected')) {
          expect(r.reason).toBeInstanceOf(WrongExpectedRevisionError);
        }
        expect(await store.readStream(stream)).toHaveLength(2);
      });

      it('of concurrent creations of one stream exactly one wins', async () => {
        const stream = streamName('create-race');
        const results = await Promise.allSettled(
          Array.from({ length: 8 }, (_, i) => append(store, stream, [`Writer${i}`], 'no_stream')),
        );
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
        expect(await store.readStream(stream)).toHaveLength(1);
      });
    });

    describe('readAll and headPosition', () => {
      it('reads every stream in commit order after an exclusive position', async () => {
        const start = await store.headPosition();
        const a = streamName('all-a');
        const b = streamName('all-b');
        await append(store, a, ['A0', 'A1'], 'no_stream');
        await append(store, b, ['B0'], 'no_stream');
        const last = await append(store, a, ['A2'], 1n);
        expect(await store.headPosition()).toBe(last.position);

        const mine = (events: RecordedEvent[]) => events.filter((e) => e.stream === a || e.stream === b);
        const all = mine(await store.readAll({ fromPosition: start }));
        expect(all.map((e) => e.type)).toEqual(['A0', 'A1', 'B0', 'A2']);
        assertStrictlyIncreasing(all.map((e) => e.position));

        const afterSecond = mine(await store.readAll({ fromPosition: all[1]!.position }));
        expect(afterSecond.map((e) => e.type)).toEqual(['B0', 'A2']);
        const page = await store.readAll({ fromPosition: start, maxCount: 2 });
        expect(page).toHaveLength(2);
        expect(page.map((e) => e.type)).toEqual(['A0', 'A1']);
      });

      it('ends a read after the event that brings its stored bytes to maxBytes, returning at least one', async () => {
        const start = await store.headPosition();
        const stream = streamName('sized');
        await append(store, stream, ['E0', 'E1', 'E2', 'E3'], 'no_stream');
        const events = await store.readStream(stream);
        const types = (read: RecordedEvent[]) => read.map((e) => e.type);
        const [first, second] = events.map((e) => e.storedBytes) as [number, number];
        expect(types(await store.readStream(stream, { maxBytes: first + second }))).toEqual(['E0', 'E1']);
        expect(types(await store.readStream(stream, { maxBytes: first + 1 }))).toEqual(['E0', 'E1']);
        expect(types(await store.readStream(stream, { maxBytes: 1 }))).toEqual(['E0']);
        expect(types(await store.readStream(stream, { fromRevision: 2n, maxBytes: 1_000_000 }))).toEqual([
          'E2',
          'E3',
        ]);
        expect(types(await store.readStream(stream, { direction: 'backwards', maxBytes: 1 }))).toEqual([
          'E3',
        ]);
        expect(types(await store.readStream(stream, { maxCount: 1, maxBytes: 1_000_000 }))).toEqual(['E0']);
        const all = await store.readAll({ fromPosition: start, maxBytes: first + 1 });
        expect(all.map((e) => e.id)).toEqual(events.slice(0, 2).map((e) => e.id));
      });

      it('reads nothing after the head', async () => {
        await append(store, streamName('head'), ['A'], 'no_stream');
        expect(await store.readAll({ fromPosition: await store.headPosition() })).toEqual([]);
      });

      it('reads the same with a timeout that is not reached', async () => {
        const start = await store.headPosition();
        const stream = streamName('timed');
        await append(store, stream, ['A0', 'A1', 'A2'], 'no_stream');
        const timeoutMs = 60_000;
        expect(await store.readAll({ fromPosition: start, maxCount: 2, timeoutMs })).toEqual(
          await store.readAll({ fromPosition: start, maxCount: 2 }),
        );
        expect(await store.readStream(stream, { fromRevision: 1n, timeoutMs })).toEqual(
          await store.readStream(stream, { fromRevision: 1n }),
        );
        expect(await store.readStream(stream, { direction: 'backwards', maxCount: 1, timeoutMs })).toEqual(
          await store.readStream(stream, { direction: 'backwards', maxCount: 1 }),
        );
        expect(await store.readStream(streamName('missing'), { timeoutMs })).toEqual([]);
      });
    });

    describe('subscribeToAll', () => {
      it('catches up from a checkpoint, then delivers live appends in order', async () => {
        const start = await store.headPosition();
        const stream = streamName('sub');
        await append(store, stream, ['Before0', 'Before1'], 'no_stream');
        const checkpoint = (await store.readStream(stream))[0]!.position;

        const subscription = store.subscribeToAll({ fromPosition: checkpoint });
        const received = collect(subscription, (e) => e.stream === stream, 3);
        await append(store, stream, ['Live0'], 1n);
        await append(store, stream, ['Live1'], 2n);
        const events = await received;
        expect(events.map((e) => e.type)).toEqual(['Before1', 'Live0', 'Live1']);
        assertStrictlyIncreasing(events.map((e) => e.position));
        expect(events.every((e) => e.position > start)).toBe(true);
        await subscription.close();
      });

      it('ends the iteration when closed', async () => {
        const subscription = store.subscribeToAll({ fromPosition: await store.headPosition() });
        const iteration = (async () => {
          for await (const _ of subscription) {
            // nothing is appended
          }
          return 'ended';
        })();
        await new Promise((resolve) => setTimeout(resolve, 20));
        await subscription.close();
        expect(await iteration).toBe('ended');
      });
    });

    describe('uniqueness reservations', () => {
      it('a value claimed by one stream cannot be claimed by another, and the failed append writes nothing', async () => {
        const value = reservation('subdomain');
        const first = streamName('tenant');
        const second = streamName('tenant');
        await store.appendToStream(first, [newEvent('TenantCreated')], {
          expectedRevision: 'no_stream',
          reservations: { claim: [value] },
        });
        const error = await store
          .appendToStream(second, [newEvent('TenantCreated')], {
            expectedRevision: 'no_stream',
            reservations: { claim: [value] },
          })
          .catch((e: unknown) => e);
        expect(error).toBeInstanceOf(UniquenessViolationError);
        expect(error).toMatchObject({ value, heldBy: first });
        expect(await store.readStream(second)).toEqual([]);
      });

      it('claims several values all or nothing', async () => {
        const taken = reservation('clerk_org');
        const free = reservation('subdomain');
        await store.appendToStream(streamName('holder'), [newEvent('A')], {
          reservations: { claim: [taken] },
        });
        const stream = streamName('tenant');
        await expect(
          store.appendToStream(stream, [newEvent('A')], { reservations: { claim: [free, taken] } }),
        ).rejects.toBeInstanceOf(UniquenessViolationError);
        // `free` was not kept by the failed append
        await store.appendToStream(streamName('other'), [newEvent('A')], { reservations: { claim: [free] } });
      });

      it('the holder may claim its value again', async () => {
        const value = reservation('subdomain');
        const stream = streamName('tenant');
        await store.appendToStream(stream, [newEvent('A')], { reservations: { claim: [value] } });
        await store.appendToStream(stream, [newEvent('B')], { reservations: { claim: [value] } });
        expect(await store.readStream(stream)).toHaveLength(2);
      });

      it('a release frees the value; releasing what another stream holds does nothing', async () => {
        const value = reservation('subdomain');
        const holder = streamName('tenant');
        const intruder = streamName('tenant');
        await store.appendToStream(holder, [newEvent('Created')], { reservations: { claim: [value] } });
        await store.appendToStream(intruder, [newEvent('Noise')], { reservations: { release: [value] } });
        await expect(
          store.appendToStream(intruder, [newEvent('Created')], { reservations: { claim: [value] } }),
        ).rejects.toBeInstanceOf(UniquenessViolationError);

        await store.appendToStream(holder, [newEvent('Deleted')], { reservations: { release: [value] } });
        await store.appendToStream(intruder, [newEvent('Created')], { reservations: { claim: [value] } });
      });

      it('one append can release an old value and claim a new one (a rename)', async () => {
        const oldValue = reservation('subdomain');
        const newValue = reservation('subdomain');
        const stream = streamName('tenant');
        await store.appendToStream(stream, [newEvent('Created')], { reservations: { claim: [oldValue] } });
        await store.appendToStream(stream, [newEvent('Renamed')], {
          expectedRevision: 0n,
          reservations: { release: [oldValue], claim: [newValue] },
        });
        await store.appendToStream(streamName('tenant'), [newEvent('Created')], {
          reservations: { claim: [oldValue] },
        });
        await expect(
          store.appendToStream(streamName('tenant'), [newEvent('Created')], {
            reservations: { claim: [newValue] },
          }),
        ).rejects.toBeInstanceOf(UniquenessViolationError);
      });

      it('a failed expected revision keeps reservations as they were', async () => {
        const value = reservation('api_key_hash');
        const stream = streamName('apikey');
        await append(store, stream, ['Issued'], 'no_stream');
        await expect(
          store.appendToStream(stream, [newEvent('Other')], {
            expectedRevision: 5n,
            reservations: { claim: [value] },
          }),
        ).rejects.toBeInstanceOf(WrongExpectedRevisionError);
        await store.appendToStream(streamName('apikey'), [newEvent('Issued')], {
          reservations: { claim: [value] },
        });
      });

      it('names the stream holding a value, and nobody once it is released', async () => {
        const value = reservation('user');
        const holder = streamName('tenant');
        expect(await store.reservationHolder(value)).toBeNull();
        await store.appendToStream(holder, [newEvent('Added')], { reservations: { claim: [value] } });
        expect(await store.reservationHolder(value)).toBe(holder);
        await store.appendToStream(holder, [newEvent('Removed')], { reservations: { release: [value] } });
        expect(await store.reservationHolder(value)).toBeNull();
      });

      it('of concurrent claims of the same value exactly one wins', async () => {
        const value = reservation('subdomain');
        const streams = Array.from({ length: 10 }, () => streamName('tenant'));
        const results = await Promise.allSettled(
          streams.map((stream) =>
            store.appendToStream(stream, [newEvent('TenantCreated')], {
              expectedRevision: 'no_stream',
              reservations: { claim: [value] },
            }),
          ),
        );
        const winners = streams.filter((_, i) => results[i]?.status === 'fulfilled');
        expect(winners).toHaveLength(1);
        for (const result of results) {
          if (result.status === 'rejected') {
            expect(result.reason).toBeInstanceOf(UniquenessViolationError);
            expect(result.reason).toMatchObject({ value, heldBy: winners[0] });
          }
        }
        const written = await Promise.all(streams.map((stream) => store.readStream(stream)));
        expect(written.filter((events) => events.length > 0)).toHaveLength(1);
      });

      it('of concurrent appends of one stream claiming one value, the one appended keeps it held', async () => {
        // A request sent twice (a double-submitted claim): the loser's failed append must not free
        // the value the winner's event claims.
        for (let round = 0; round < 10; round++) {
          const value = reservation('custom_domain');
          const stream = streamName('tenant');
          await append(store, stream, ['TenantCreated'], 'no_stream');
          const results = await Promise.allSettled(
            Array.from({ length: 4 }, () =>
              store.appendToStream(stream, [newEvent('CustomDomainCreated')], {
                expectedRevision: 0n,
                reservations: { claim: [value] },
              }),
            ),
          );
          expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(1);
          for (const result of results) {
            if (result.status === 'rejected')
              expect(result.reason).toBeInstanceOf(WrongExpectedRevisionError);
          }
          expect(await store.reservationHolder(value)).toBe(stream);
          await expect(
            store.appendToStream(streamName('tenant'), [newEvent('CustomDomainCreated')], {
              reservations: { claim: [value] },
            }),
          ).rejects.toBeInstanceOf(UniquenessViolationError);
        }
      });
    });

    describe('upcasters', () => {
      it('turn old schema versions into the current one on every read path', async () => {
        const upcasters = new UpcasterRegistry()
          .register('PlanChanged', 1, (e) => ({
            ...e,
            data: { plan: (e.data as { tier: string }).tier, seats: 1 },
          }))
          .register('PlanChanged', 2, (e) => ({ ...e, data: { ...(e.data as object), billing: 'monthly' } }));
        const upcasting = harness.createStore({ upcasters });
        try {
          const stream = streamName('plan');
          const start = await upcasting.headPosition();
          await upcasting.appendToStream(stream, [
            newEvent('PlanChanged', { tier: 'pro' }, 1),
            newEvent('PlanChanged', { plan: 'free', seats: 3 }, 2),
            newEvent('PlanChanged', { plan: 'team', seats: 9, billing: 'yearly' }, 3),
            newEvent('Unrelated', { tier: 'x' }, 1),
          ]);
          const expected = [
            { type: 'PlanChanged', data: { plan: 'pro', seats: 1, billing: 'monthly' }, version: 3 },
            { type: 'PlanChanged', data: { plan: 'free', seats: 3, billing: 'monthly' }, version: 3 },
            { type: 'PlanChanged', data: { plan: 'team', seats: 9, billing: 'yearly' }, version: 3 },
            { type: 'Unrelated', data: { tier: 'x' }, version: 1 },
          ];
          await expectOnEveryReadPath(upcasting, stream, start, expected);
        } finally {
          await upcasting.close();
        }
      });
    });

    describe('renamed event types', () => {
      it('read under their current name on every read path, then upcast as that type', async () => {
        const upcasters = new UpcasterRegistry()
          .renameType('PlanPicked', 'PlanChosen')
          .renameType('PlanChosen', 'PlanChanged')
          .register('PlanChanged', 1, (e) => ({ ...e, data: { plan: (e.data as { tier: string }).tier } }));
        const renaming = harness.createStore({ upcasters });
        try {
          const stream = streamName('renamed');
          const start = await renaming.headPosition();
          await renaming.appendToStream(stream, [
            newEvent('PlanPicked', { tier: 'pro' }, 1),
            newEvent('PlanChanged', { plan: 'team' }, 2),
          ]);
          const expected = [
            { type: 'PlanChanged', data: { plan: 'pro' }, version: 2 },
            { type: 'PlanChanged', data: { plan: 'team' }, version: 2 },
          ];
          await expectOnEveryReadPath(renaming, stream, start, expected);
        } finally {
          await renaming.close();
        }
      });
    });

    describe('bad input', () => {
      it('rejects an empty append, a malformed id, a negative revision and a bad maxCount or maxBytes, writing nothing', async () => {
        const stream = streamName('bad');
        const head = await store.headPosition();
        await expect(store.appendToStream(stream, [])).rejects.toThrow(/events/);
        await expect(store.appendToStream(stream, [{ ...newEvent('A'), id: 'not-a-uuid' }])).rejects.toThrow(
          /events\[0\]\.id/,
        );
        await expect(
          store.appendToStream(stream, [newEvent('A')], { expectedRevision: -1n }),
        ).rejects.toThrow(/expectedRevision/);
        await expect(
          store.appendToStream(stream, [newEvent('A')], { reservations: { claim: [''] } }),
        ).rejects.toThrow(/reservations\.claim/);
        await expect(store.readAll({ maxCount: 0 })).rejects.toThrow(/maxCount/);
        await expect(store.readStream(stream, { maxCount: -1 })).rejects.toThrow(/maxCount/);
        await expect(store.readAll({ timeoutMs: 0 })).rejects.toThrow(/timeoutMs/);
        await expect(store.readStream(stream, { timeoutMs: 1.5 })).rejects.toThrow(/timeoutMs/);
        await expect(store.readAll({ maxBytes: 0 })).rejects.toThrow(/maxBytes/);
        await expect(store.readStream(stream, { maxBytes: 1.5 })).rejects.toThrow(/maxBytes/);
        expect(await store.readStream(stream)).toEqual([]);
        expect(await store.headPosition()).toBe(head);
      });

      it('rejects data or metadata holding U+0000 or an unpaired surrogate (no jsonb can), naming the field, writing nothing', async () => {
        const stream = streamName('unstorable');
        const head = await store.headPosition();
        const refused: Array<[NewEvent, RegExp]> = [
          [newEvent('A', { name: 'a\u0000b' }), /events\[1\]\.data\.name/],
          [newEvent('A', { list: ['ok', '\ud800'] }), /events\[1\]\.data\.list\[1\]/],
          [newEvent('A', { ['key\u0000']: 1 }), /events\[1\]\.data/],
          [
            { ...newEvent('A'), metadata: metadata({ actor: 'user_\udc00' }) },
            /events\[1\]\.metadata\.actor/,
          ],
        ];
        for (const [event, field] of refused) {
          await expect(store.appendToStream(stream, [newEvent('Fine'), event])).rejects.toThrow(field);
        }
        expect(await store.readStream(stream)).toEqual([]);
        expect(await store.headPosition()).toBe(head);
        // A surrogate pair is one character (an emoji), stored and read back as written.
        await store.appendToStream(stream, [newEvent('A', { name: 'ok \ud83d\ude00' })]);
        expect((await store.readStream(stream)).map((e) => e.data)).toEqual([{ name: 'ok \ud83d\ude00' }]);
      });
    });
  });
}

function streamName(kind: string): string {
  return `${kind}-${uniqueSuffix()}`;
}

function reservation(kind: string): string {
  return `${kind}:${uniqueSuffix()}`;
}

export function metadata(overrides: Partial<EventMetadata> = {}): EventMetadata {
  return {
    actor: 'test',
    tenant_id: null,
    correlation_id: randomUUID(),
    causation_id: null,
    occurred_at: new Date().toISOString(),
    schema_version: 1,
    ...overrides,
  };
}

function newEvent(type: string, data: unknown = {}, schemaVersion = 1): NewEvent {
  return { type, data, metadata: metadata({ schema_version: schemaVersion }) };
}

function append(
  store: EventStore,
  stream: string,
  types: string[],
  expectedRevision: NonNullable<Parameters<EventStore['appendToStream']>[2]>['expectedRevision'],
) {
  return store.appendToStream(
    stream,
    types.map((type) => newEvent(type)),
    expectedRevision === undefined ? {} : { expectedRevision },
  );
}

/** What readStream, readAll and subscribeToAll (from `start`) hand back of `stream`: type, data, version. */
async function expectOnEveryReadPath(
  store: EventStore,
  stream: string,
  start: bigint,
  expected: ReadonlyArray<{ type: string; data: unknown; version: number }>,
): Promise<void> {
  const shape = (events: RecordedEvent[]) =>
    events.map((e) => ({ type: e.type, data: e.data, version: e.metadata.schema_version }));
  expect(shape(await store.readStream(stream))).toEqual(expected);
  const all = (await store.readAll({ fromPosition: start })).filter((e) => e.stream === stream);
  expect(shape(all)).toEqual(expected);
  const subscription = store.subscribeToAll({ fromPosition: start });
  try {
    expect(shape(await collect(subscription, (e) => e.stream === stream, expected.length))).toEqual(expected);
  } finally {
    await subscription.close();
  }
}

/** Takes events from a subscription until `count` matching ones arrived (or `count` events passed). */
async function collect(
  subscription: Subscription,
  matches: (event: RecordedEvent) => boolean,
  count: number,
): Promise<RecordedEvent[]> {
  const received: RecordedEvent[] = [];
  for await (const event of subscription) {
    if (matches(event)) received.push(event);
    if (received.length === count) break;
  }
  return received;
}

function assertStrictlyIncreasing(positions: bigint[]): void {
  for (let i = 1; i < positions.length; i++) expect(positions[i]!).toBeGreaterThan(positions[i - 1]!);
}
