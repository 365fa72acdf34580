import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { type SnapshotBus, SnapshotTooLargeError } from './port.js';
import { eventually, recordSubscription, sampleSnapshot, snapshotMessage } from './testing.js';

export const CONTRACT_MAX_MESSAGE_BYTES = 256 * 1024;

export interface ContractBus {
  /** A bus on a fresh, empty topic whose message limit is CONTRACT_MAX_MESSAGE_BYTES. */
  bus: SnapshotBus;
  /** Another bus instance (another process, in real life) on the same topic. */
  connectAnother(): SnapshotBus;
}

/** The behaviour every snapshot bus adapter must have. */
export function snapshotBusContract(name: string, createBus: () => Promise<ContractBus>): void {
  describe(`${name} snapshot bus contract`, () => {
    const toClose: SnapshotBus[] = [];
    afterEach(async () => {
      await Promise.all(toClose.splice(0).map((bus) => bus.close()));
    });
    async function fresh(): Promise<ContractBus> {
      const created = await createBus();
      toClose.push(created.bus);
      return {
        bus: created.bus,
        connectAnother: () => {
          const other = created.connectAnother();
          toClose.push(other);
          return other;
        },
      };
    }

    it('reports caught up at once on an empty topic, then delivers what is published later', async () => {
      const { bus, connectAnother } = await fresh();
      const subscriber = await recordSubscription(connectAnother());
      await eventually('caught up', () => subscriber.caughtUpAfter() !== undefined);
      expect(subscriber.caughtUpAfter()).toBe(0);

      const tenantId = randomUUID();
      await bus.publish([snapshotMessage(sampleSnapshot(tenantId, 5n))]);
      await eventually('live message', () => subscriber.messages.length === 1);
      expect(subscriber.messages[0]).toMatchObject({ kind: 'snapshot', tenantId, version: 5n });
    });

    it('reads each tenant’s highest version on the log, tombstones included, and none on an empty one', async () => {
      const { bus, connectAnother } = await fresh();
      const reader = connectAnother();
      expect(await reader.readNewestVersions?.()).toEqual(new Map());
      const a = randomUUID();
      const b = randomUUID();
      await bus.publish([
        snapshotMessage(sampleSnapshot(a, 7n)),
        snapshotMessage(sampleSnapshot(b, 2n)),
        // A republish of an older version after a newer one: the newer one stays the tenant's highest.
        snapshotMessage(sampleSnapshot(a, 3n)),
        { kind: 'tombstone', tenantId: b, version: 4n },
      ]);
      expect(await reader.readNewestVersions?.()).toEqual(
        new Map([
          [a, 7n],
          [b, 4n],
        ]),
      );
    });

    it('delivers the whole log to a late subscriber, each tenant at its newest record, and only then says caught up', async () => {
      const { bus, connectAnother } = await fresh();
      const a = randomUUID();
      const b = randomUUID();
      const result = await bus.publish([
        snapshotMessage(sampleSnapshot(a, 1n)),
        snapshotMessage(sampleSnapshot(b, 2n)),
        snapshotMessage(sampleSnapshot(a, 3n, { name: 'Acme renamed' })),
        { kind: 'tombstone', tenantId: b, version: 4n },
      ]);
      expect(result.failed).toEqual([]);
      expect(result.published).toHaveLength(4);

      const subscriber = await recordSubscription(connectAnother());
      await eventually('caught up', () => subscriber.caughtUpAfter() !== undefined);
      expect(subscriber.caughtUpAfter()).toBe(2);
      expect(subscriber.versionsOf(a)).toEqual([3n]);
      expect(subscriber.versionsOf(b)).toEqual([4n]);
      const last = subscriber.messages.find((message) => message.version === 3n);
      expect(last?.kind === 'snapshot' && last.snapshot.tenant.name).toBe('Acme renamed');
      expect(subscriber.messages.find((message) => message.version === 4n)).toEqual({
        kind: 'tombstone',
        tenantId: b,
        version: 4n,
      });
    });

    it('delivers each tenant once per run of records read together: its newest version', async () => {
      const { bus, connectAnother } = await fresh();
      const churning = randomUUID();
      const deleted = randomUUID();
      const quiet = randomUUID();
      await bus.publish([
        snapshotMessage(sampleSnapshot(churning, 1n)),
        snapshotMessage(sampleSnapshot(deleted, 2n)),
        snapshotMessage(sampleSnapshot(churning, 3n)),
        snapshotMessage(sampleSnapshot(quiet, 4n)),
        { kind: 'tombstone', tenantId: deleted, version: 5n },
        snapshotMessage(sampleSnapshot(churning, 6n, { name: 'newest' })),
        // Redelivered after the delete (a republish): older than the tombstone, which still wins.
        snapshotMessage(sampleSnapshot(deleted, 2n)),
      ]);
      const subscriber = await recordSubscription(connectAnother());
      await eventually('caught up', () => subscriber.caughtUpAfter() !== undefined);
      expect(subscriber.versionsOf(churning)).toEqual([6n]);
      expect(subscriber.versionsOf(quiet)).toEqual([4n]);
      expect(subscriber.messages.filter((m) => m.tenantId === deleted)).toEqual([
        { kind: 'tombstone', tenantId: deleted, version: 5n },
      ]);
      const newest = subscriber.messages.find((m) => m.tenantId === churning);
      expect(newest?.kind === 'snapshot' && newest.snapshot.tenant.name).toBe('newest');
    });

    it('lets the event loop run between two tenants’ snapshots read together', async () => {
      const { bus, connectAnother } = await fresh();
      await bus.publish(
        [1n, 2n, 3n].map((version) => snapshotMessage(sampleSnapshot(randomUUID(), version))),
      );
      // Each delivery schedules a turn of the event loop; the next delivery must come after it.
      let turns = 0;
      const turnsAtDelivery: number[] = [];
      let caughtUp = false;
      await connectAnother().subscribe({
        onMessage: () => {
          turnsAtDelivery.push(turns);
          setImmediate(() => {
            turns += 1;
          });
        },
        onCaughtUp: () => {
          caughtUp = true;
        },
        onHealth: () => {},
      });
      await eventually('caught up', () => caughtUp);
      expect(turnsAtDelivery).toHaveLength(3);
      expect(new Set(turnsAtDelivery).size).toBe(3);
    });

    it('hands over the next message only once a handler’s promise has settled, and says caught up after', async () => {
      const { bus, connectAnother } = await fresh();
      const sample = (tenantId: string, index: number) =>
        snapshotMessage(sampleSnapshot(tenantId, BigInt(index + 1)));
      const before = [randomUUID(), randomUUID(), randomUUID()];
      await bus.publish(before.map(sample));
      const log: string[] = [];
      await connectAnother().subscribe({
        // A snapshot applied in slices of the event loop.
        onMessage: async (message) => {
          log.push(`start ${message.tenantId}`);
          for (let turn = 0; turn < 3; turn++) await new Promise((resolve) => setImmediate(resolve));
          log.push(`end ${message.tenantId}`);
        },
        onCaughtUp: () => log.push('caught up'),
        onHealth: () => {},
      });
      await eventually('caught up', () => log.includes('caught up'));
      const live = [randomUUID(), randomUUID()];
      await bus.publish(live.map(sample));
      await eventually('live messages applied', () => log.length === 2 * (before.length + live.length) + 1);

      const started = log.filter((entry) => entry.startsWith('start ')).map((entry) => entry.slice(6));
      expect(started.slice(0, 3).sort()).toEqual([...before].sort());
      expect(started.slice(3).sort()).toEqual([...live].sort());
      const inTurn = (tenants: string[]) =>
        tenants.flatMap((tenantId) => [`start ${tenantId}`, `end ${tenantId}`]);
      expect(log).toEqual([...inTurn(started.slice(0, 3)), 'caught up', ...inTurn(started.slice(3))]);
    });

    it('gives every subscriber every message (replicas do not share the log)', async () => {
      const { bus, connectAnother } = await fresh();
      const first = await recordSubscription(connectAnother());
      const second = await recordSubscription(connectAnother());
      await eventually(
        'both caught up',
        () => first.caughtUpAfter() !== undefined && second.caughtUpAfter() !== undefined,
      );
      const tenants = [randomUUID(), randomUUID(), randomUUID()];
      await bus.publish(
        tenants.map((tenantId, index) => snapshotMessage(sampleSnapshot(tenantId, BigInt(index + 1)))),
      );
      await eventually(
        'all delivered twice',
        () => first.messages.length === 3 && second.messages.length === 3,
      );
      expect(new Set(first.messages.map((m) => m.tenantId))).toEqual(new Set(tenants));
      expect(new Set(second.messages.map((m) => m.tenantId))).toEqual(new Set(tenants));
    });

    it('round-trips a large snapshot (compressed on the wire) unchanged', async () => {
      const { bus, connectAnother } = await fresh();
      const snapshot = sampleSnapshot(randomUUID(), 9n, { routes: 1000 });
      expect(JSON.stringify(snapshot).length).toBeGreaterThan(CONTRACT_MAX_MESSAGE_BYTES);
      const result = await bus.publish([snapshotMessage(snapshot)]);
      expect(result.failed).toEqual([]);
      const subscriber = await recordSubscription(connectAnother());
      await eventually('delivered', () => subscriber.messages.length === 1);
      const [delivered] = subscriber.messages;
      expect(delivered?.kind === 'snapshot' && delivered.snapshot).toEqual(snapshot);
    });

    it('refuses a snapshot too large even compressed, by tenant, and still publishes the others', async () => {
      const { bus, connectAnother } = await fresh();
      const big = sampleSnapshot(randomUUID(), 10n, { routes: 6000, randomPaths: true });
      const small = sampleSnapshot(randomUUID(), 11n);
      const result = await bus.publish([snapshotMessage(big), snapshotMessage(small)]);
      expect(result.published.map((message) => message.tenantId)).toEqual([small.tenant_id]);
      expect(result.failed).toHaveLength(1);
      expect(result.failed[0]?.tenantId).toBe(big.tenant_id);
      expect(result.failed[0]?.error).toBeInstanceOf(SnapshotTooLargeError);
      const subscriber = await recordSubscription(connectAnother());
      await eventually('caught up', () => subscriber.caughtUpAfter() !== undefined);
      expect(subscriber.messages.map((message) => message.tenantId)).toEqual([small.tenant_id]);
    });

    it('delivers a republished (duplicate) message again, so subscribers must dedupe by version', async () => {
      const { bus, connectAnother } = await fresh();
      const message = snapshotMessage(sampleSnapshot(randomUUID(), 7n));
      const subscriber = await recordSubscription(connectAnother());
      await eventually('caught up', () => subscriber.caughtUpAfter() !== undefined);
      await bus.publish([message]);
      await eventually('delivered', () => subscriber.messages.length === 1);
      await bus.publish([message]);
      await eventually('delivered again', () => subscriber.messages.length === 2);
      expect(subscriber.versionsOf(message.tenantId)).toEqual([7n, 7n]);
    });
  });
}
