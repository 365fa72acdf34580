import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TenantSnapshot } from '@vantageedge/shared/domain/gateway-config';
import { type StructuredLogger, silentLogger } from '@vantageedge/shared/observability/logger';
import type { EventLoopSlices } from '@vantageedge/shared/process/event-loop-slices';
import { HEADER_ENCODING, HEADER_VERSION } from '@vantageedge/shared/snapshot-bus/codec';
import { createInMemorySnapshotBus } from '@vantageedge/shared/snapshot-bus/in-memory-snapshot-bus';
import type { SnapshotBus } from '@vantageedge/shared/snapshot-bus/port';
import { eventually, sampleSnapshot, snapshotMessage } from '@vantageedge/shared/snapshot-bus/testing';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { GatewayConfigStore } from '../config/gateway-config-store.js';
import type { TenantConfigSink } from '../config/tenant-config-sink.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { type ConfigPlane, startConfigPlane } from './config-plane.js';
import { SnapshotStore, tenantFileName } from './snapshot-store.js';
import { RecordingSink } from './testing.js';

const planes: ConfigPlane[] = [];
afterEach(async () => {
  await Promise.all(planes.splice(0).map((plane) => plane.close()));
});

function start(
  options: Omit<Parameters<typeof startConfigPlane>[0], 'registry' | 'logger' | 'replicaId'> & {
    logger?: StructuredLogger;
  },
) {
  const registry = new Registry();
  const plane = startConfigPlane({ logger: silentLogger, ...options, registry, replicaId: randomUUID() });
  planes.push(plane);
  return { plane, registry };
}

/** Counts how often each tenant's applied snapshot is serialized (JSON.stringify calls its toJSON). */
class SerializationCountingSink extends RecordingSink {
  readonly serialized = new Map<string, number>();

  override apply(snapshot: TenantSnapshot): boolean {
    const counts = this.serialized;
    Object.defineProperty(snapshot, 'toJSON', {
      enumerable: false,
      value(this: TenantSnapshot) {
        counts.set(this.tenant_id, (counts.get(this.tenant_id) ?? 0) + 1);
        return { ...this };
      },
    });
    return super.apply(snapshot);
  }
}

/** The version of each tenant in the snapshot store (empty while it is not written yet). */
function versionsInFile(store: string): Map<string, bigint> {
  let names: string[];
  try {
    names = readdirSync(store);
  } catch {
    return new Map();
  }
  // Skips a tenant's file being written (a temporary file renamed into place when complete).
  const snapshots = names
    .filter((name) => !name.endsWith('.tmp'))
    .map(
      (name) =>
        JSON.parse(readFileSync(path.join(store, name), 'utf8')) as { tenant_id: string; version: string },
    );
  return new Map(snapshots.map((snapshot) => [snapshot.tenant_id, BigInt(snapshot.version)]));
}

describe('config plane', () => {
  it('becomes ready only after the existing log is applied, then applies live updates', async () => {
    const bus = createInMemorySnapshotBus();
    const tenants = [randomUUID(), randomUUID()];
    await bus.publish(tenants.map((id) => snapshotMessage(sampleSnapshot(id, 3n))));
    const sink = new RecordingSink();
    const { plane, registry } = start({ bus, sink });
    expect(plane.status().ready).toBe(false);
    await plane.ready;
    expect(plane.status()).toMatchObject({ ready: true, degraded: false, caughtUp: true, tenants: 2 });
    expect([...sink.tenants.keys()].sort()).toEqual([...tenants].sort());

    await bus.publish([snapshotMessage(sampleSnapshot(tenants[0]!, 8n, { name: 'Renamed' }))]);
    await eventually('live update', () => sink.tenants.get(tenants[0]!)?.tenant.name === 'Renamed');
    const metrics = await registry.metrics();
    expect(metrics).toContain(`vantageedge_config_version{tenant="${tenants[0]}"} 8`);
    expect(metrics).toMatch(/vantageedge_config_propagation_delay_seconds_count 1\b/);
    expect(metrics).toMatch(/vantageedge_config_apply_duration_seconds_count 3\b/);
  });

  it('drops stale and duplicate versions, and a tombstone removes the tenant for good', async () => {
    const bus = createInMemorySnapshotBus();
    const sink = new RecordingSink();
    const { plane } = start({ bus, sink });
    await plane.ready;
    const tenantId = randomUUID();
    // One at a time: the bus delivers only the newest of a tenant's records read together.
    const names = { five: 5n, four: 4n, 'five again': 5n };
    for (const [calls, [name, version]] of Object.entries(names).entries()) {
      await bus.publish([snapshotMessage(sampleSnapshot(tenantId, version, { name }))]);
      await eventually(`${name} delivered`, () => sink.applyCalls === calls + 1);
    }
    expect(sink.tenants.get(tenantId)?.tenant.name).toBe('five');

    await bus.publish([
      { kind: 'tombstone', tenantId, version: 9n },
      snapshotMessage(sampleSnapshot(tenantId, 6n, { name: 'six, republished late' })),
    ]);
    await eventually('removed', () => !sink.tenants.has(tenantId));
    await bus.publish([snapshotMessage(sampleSnapshot(randomUUID(), 10n))]);
    await eventually('next message', () => sink.tenants.size === 1);
    expect(sink.tenants.has(tenantId)).toBe(false);
  });

  it('keeps serving the last config while the bus is down, reports degraded, and catches up', async () => {
    const bus = createInMemorySnapshotBus();
    const tenantId = randomUUID();
    await bus.publish([snapshotMessage(sampleSnapshot(tenantId, 1n, { name: 'before' }))]);
    const sink = new RecordingSink();
    const { plane, registry } = start({ bus, sink });
    await plane.ready;

    bus.log.setAvailable(false);
    await eventually('degraded', () => plane.status().degraded);
    expect(plane.status().ready).toBe(true);
    expect(sink.tenants.get(tenantId)?.tenant.name).toBe('before');
    expect(await registry.metrics()).toMatch(/vantageedge_config_plane_degraded\S* 1\b/);

    bus.log.setAvailable(true);
    await bus.publish([snapshotMessage(sampleSnapshot(tenantId, 2n, { name: 'after' }))]);
    await eventually('caught up', () => sink.tenants.get(tenantId)?.tenant.name === 'after');
    expect(plane.status().degraded).toBe(false);
  });

  it('keeps the previous config of a tenant whose new snapshot cannot be applied', async () => {
    const bus = createInMemorySnapshotBus();
    const tenantId = randomUUID();
    await bus.publish([snapshotMessage(sampleSnapshot(tenantId, 1n, { name: 'good' }))]);
    const sink = new RecordingSink();
    const { plane, registry } = start({ bus, sink });
    await plane.ready;
    sink.failWith = new Error('route 1: invalid path_pattern');
    await bus.publish([snapshotMessage(sampleSnapshot(tenantId, 2n, { name: 'bad' }))]);
    await eventually('error counted', () => plane.status().lastError !== null);
    expect(sink.tenants.get(tenantId)?.tenant.name).toBe('good');
    expect(await registry.metrics()).toMatch(/vantageedge_config_apply_errors_total\S* 1\b/);
  });

  describe('snapshot file', () => {
    let dir: string;
    afterEach(async () => {
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('writes the applied config, and warm-starts from it (ready, degraded) while the bus is down', async () => {
      dir = await mkdtemp(path.join(tmpdir(), 've-config-plane-'));
      const file = path.join(dir, 'snapshots.json');
      const bus = createInMemorySnapshotBus();
      const kept = randomUUID();
      const deletedMeanwhile = randomUUID();
      await bus.publish([
        snapshotMessage(sampleSnapshot(kept, 1n, { name: 'kept' })),
        snapshotMessage(sampleSnapshot(deletedMeanwhile, 2n)),
      ]);
      const first = start({ bus, sink: new RecordingSink(), snapshotFile: file, snapshotFileDelayMs: 10 });
      await first.plane.ready;
      await first.plane.close();
      expect([...versionsInFile(file).keys()].sort()).toEqual([kept, deletedMeanwhile].sort());

      // While the replica is away the tenant is deleted and, later, its tombstone compacted away.
      await bus.publish([{ kind: 'tombstone', tenantId: deletedMeanwhile, version: 3n }]);
      bus.log.compact({ dropTombstones: true });

      // Restart while the bus is down: the file's config is served, flagged degraded.
      bus.log.setAvailable(false);
      const sink = new RecordingSink();
      const second = start({ bus, sink, snapshotFile: file });
      await second.plane.ready;
      expect(second.plane.status()).toMatchObject({
        ready: true,
        degraded: true,
        warmStarted: true,
        caughtUp: false,
      });
      expect(sink.tenants.get(kept)?.tenant.name).toBe('kept');
      expect(sink.tenants.has(deletedMeanwhile)).toBe(true);

      bus.log.setAvailable(true);
      await eventually('caught up', () => second.plane.status().caughtUp);
      expect(sink.tenants.has(kept)).toBe(true);
      expect(sink.tenants.has(deletedMeanwhile)).toBe(false);
    });

    it('tries a failed write again after the interval, without waiting for another change', async () => {
      dir = await mkdtemp(path.join(tmpdir(), 've-config-plane-'));
      // The store's parent is a file at first: writing the store fails (ENOTDIR).
      const parent = path.join(dir, 'parent');
      await writeFile(parent, '');
      const file = path.join(parent, 'snapshots');
      const bus = createInMemorySnapshotBus();
      const tenant = randomUUID();
      await bus.publish([snapshotMessage(sampleSnapshot(tenant, 1n))]);
      const warnings: string[] = [];
      const { plane } = start({
        bus,
        sink: new RecordingSink(),
        snapshotFile: file,
        snapshotFileDelayMs: 10,
        snapshotFileIntervalMs: 50,
        logger: { ...silentLogger, warn: (message: string) => void warnings.push(message) },
      });
      await plane.ready;
      await eventually('a failed write', () => warnings.includes('could not write the snapshot files'));
      expect(versionsInFile(file).size).toBe(0);

      await rm(parent);
      await mkdir(parent);
      await eventually('written on a retry', () => versionsInFile(file).get(tenant) === 1n);
    });

    it('forgets a tenant deleted while the replica was away, so a later warm start does not serve it', async () => {
      dir = await mkdtemp(path.join(tmpdir(), 've-config-plane-'));
      const file = path.join(dir, 'snapshots.json');
      const bus = createInMemorySnapshotBus();
      const kept = randomUUID();
      const deletedMeanwhile = randomUUID();
      await bus.publish([
        snapshotMessage(sampleSnapshot(kept, 1n)),
        snapshotMessage(sampleSnapshot(deletedMeanwhile, 1n)),
      ]);
      const first = start({ bus, sink: new RecordingSink(), snapshotFile: file, snapshotFileDelayMs: 10 });
      await first.plane.ready;
      await first.plane.close();
      await bus.publish([{ kind: 'tombstone', tenantId: deletedMeanwhile, version: 2n }]);
      bus.log.compact({ dropTombstones: true });

      // The next start catches up and learns the tenant is gone (nothing else changes).
      const second = start({ bus, sink: new RecordingSink(), snapshotFile: file, snapshotFileDelayMs: 10 });
      await second.plane.ready;
      await second.plane.close();

      bus.log.setAvailable(false);
      const sink = new RecordingSink();
      const third = start({ bus, sink, snapshotFile: file });
      await third.plane.ready;
      expect(third.plane.status()).toMatchObject({ warmStarted: true, degraded: true });
      expect([...sink.tenants.keys()]).toEqual([kept]);
    });

    // Whoever can write the topic can write millions of small forged records, each read by every replica
    // (and again by every replica that starts): one error line each would flood the log pipeline.
    it('logs a bounded number of refused records per window, the next line counting those left out', async () => {
      const inner = createInMemorySnapshotBus();
      let clock = 0;
      let refuse: ((count: number) => void) | undefined;
      const bus: SnapshotBus = {
        ...inner,
        verifiesSignatures: true,
        subscribe: (handlers) => {
          refuse = (count) => {
            for (let i = 0; i < count; i++)
              handlers.onUnverifiedMessage?.({
                tenantId: randomUUID(),
                reason: 'missing',
                detail: 'unsigned',
              });
          };
          return inner.subscribe(handlers);
        },
      };
      const lines: Array<{ message: string; fields: Record<string, unknown> | undefined }> = [];
      const { plane, registry } = start({
        bus,
        sink: new RecordingSink(),
        clock: { now: () => clock, cpuMs: () => 0 },
        logger: {
          ...silentLogger,
          error: (message: string, fields?: Record<string, unknown>) => void lines.push({ message, fields }),
        },
      });
      await plane.ready;
      refuse!(10_000);
      const refusedLines = () => lines.filter((line) => line.message === 'unsigned snapshot message refused');
      expect(refusedLines().length).toBeGreaterThan(0);
      expect(refusedLines().length).toBeLessThanOrEqual(100);
      expect(await registry.metrics()).toMatch(
        /vantageedge_config_unverified_messages_total\{reason="missing"\} 10000\b/,
      );

      const logged = refusedLines().length;
      clock += 60_000;
      refuse!(1);
      expect(refusedLines()).toHaveLength(logged + 1);
      expect(refusedLines().at(-1)?.fields).toMatchObject({ unlogged_refusals: 10_000 - logged });
    });

    // A topic writer without the signing key could otherwise keep a deleted tenant served from every
    // replica's file by producing any record under its id.
    it('forgets a tenant deleted while the replica was away even when a forged record of it is on the topic', async () => {
      dir = await mkdtemp(path.join(tmpdir(), 've-config-plane-'));
      const file = path.join(dir, 'snapshots.json');
      const inner = createInMemorySnapshotBus();
      const deletedMeanwhile = randomUUID();
      let forged = false;
      const bus: SnapshotBus = {
        ...inner,
        verifiesSignatures: true,
        subscribe: (handlers) =>
          inner.subscribe({
            ...handlers,
            onCaughtUp: () => {
              if (forged) {
                handlers.onUnverifiedMessage?.({
                  tenantId: deletedMeanwhile,
                  reason: 'missing',
                  detail: 'unsigned',
                });
              }
              handlers.onCaughtUp();
            },
          }),
      };
      await inner.publish([snapshotMessage(sampleSnapshot(deletedMeanwhile, 1n))]);
      const first = start({ bus, sink: new RecordingSink(), snapshotFile: file, snapshotFileDelayMs: 10 });
      await first.plane.ready;
      await first.plane.close();
      await inner.publish([{ kind: 'tombstone', tenantId: deletedMeanwhile, version: 2n }]);
      inner.log.compact({ dropTombstones: true });
      forged = true;

      const sink = new RecordingSink();
      const { plane, registry } = start({ bus, sink, snapshotFile: file, snapshotFileDelayMs: 10 });
      await plane.ready;
      expect(plane.status()).toMatchObject({ caughtUp: true, warmStarted: true });
      expect([...sink.tenants.keys()]).toEqual([]);
      expect(await registry.metrics()).toMatch(
        /vantageedge_config_unverified_messages_total\{reason="missing"\} 1\b/,
      );
    });

    it('keeps a tenant from the file whose newest record on the topic it cannot read (it was not deleted)', async () => {
      dir = await mkdtemp(path.join(tmpdir(), 've-config-plane-'));
      const file = path.join(dir, 'snapshots.json');
      const bus = createInMemorySnapshotBus();
      const tenantId = randomUUID();
      await bus.publish([snapshotMessage(sampleSnapshot(tenantId, 1n, { name: 'served' }))]);
      const first = start({ bus, sink: new RecordingSink(), snapshotFile: file, snapshotFileDelayMs: 10 });
      await first.plane.ready;
      await first.plane.close();

      // While the replica is away its tenant's next snapshot is written in a schema this replica does
      // not read (a newer projector during a deploy), and compaction leaves only that record.
      const unreadable = { ...sampleSnapshot(tenantId, 2n, { name: 'newer' }), schema_version: 2 };
      bus.log.append([
        {
          key: tenantId,
          value: Buffer.from(JSON.stringify(unreadable)),
          headers: { [HEADER_VERSION]: '2', [HEADER_ENCODING]: 'json' },
        },
      ]);
      bus.log.compact();

      const sink = new RecordingSink();
      const { plane, registry } = start({ bus, sink, snapshotFile: file });
      await plane.ready;
      expect(plane.status()).toMatchObject({ caughtUp: true, warmStarted: true });
      // The previous config keeps serving, as it does when the record arrives live, and it is reported.
      expect(sink.tenants.get(tenantId)?.tenant.name).toBe('served');
      expect(await registry.metrics()).toMatch(/vantageedge_config_invalid_messages_total\S* 1\b/);
    });

    it('rewrites the file after one tenant’s changes without serializing the tenants that did not change', async () => {
      dir = await mkdtemp(path.join(tmpdir(), 've-config-plane-'));
      const file = path.join(dir, 'snapshots.json');
      const bus = createInMemorySnapshotBus();
      const quiet = Array.from({ length: 20 }, () => randomUUID());
      const churning = randomUUID();
      await bus.publish([...quiet, churning].map((id) => snapshotMessage(sampleSnapshot(id, 1n))));
      const sink = new SerializationCountingSink();
      const { plane } = start({
        bus,
        sink,
        snapshotFile: file,
        snapshotFileDelayMs: 10,
        snapshotFileIntervalMs: 10,
      });
      await plane.ready;
      await eventually('file written', () => versionsInFile(file).size === quiet.length + 1);

      sink.serialized.clear();
      for (let version = 2n; version <= 6n; version++) {
        await bus.publish([snapshotMessage(sampleSnapshot(churning, version, { name: `v${version}` }))]);
        await eventually(`v${version} in the file`, () => versionsInFile(file).get(churning) === version);
      }

      expect(Object.fromEntries(quiet.map((id) => [id, sink.serialized.get(id) ?? 0]))).toEqual(
        Object.fromEntries(quiet.map((id) => [id, 0])),
      );
      const written = versionsInFile(file);
      expect(written.size).toBe(quiet.length + 1);
      for (const id of quiet) expect(written.get(id)).toBe(1n);
    });

    it('is readable by its owner only (routes’ header transforms may hold origin credentials)', async () => {
      dir = await mkdtemp(path.join(tmpdir(), 've-config-plane-'));
      const storeDir = path.join(dir, 'snapshots');
      const tenantId = randomUUID();
      const store = new SnapshotStore(storeDir);
      store.set(sampleSnapshot(tenantId, 1n));
      await store.flush();
      const file = path.join(storeDir, tenantFileName(tenantId));
      expect((await stat(storeDir)).mode & 0o777).toBe(0o700);
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      // A file left readable by all is replaced by an owner-only one.
      await chmod(file, 0o644);
      store.set(sampleSnapshot(tenantId, 2n));
      await store.flush();
      expect((await stat(file)).mode & 0o777).toBe(0o600);
    });

    it('starts cold when the file is missing or a torn earlier single file, then writes the store', async () => {
      dir = await mkdtemp(path.join(tmpdir(), 've-config-plane-'));
      const file = path.join(dir, 'snapshots.json');
      await writeFile(file, '{"written_at":"2026-01-01T00:00:00Z","snapshots":[{not json');
      const bus = createInMemorySnapshotBus();
      const tenantId = randomUUID();
      await bus.publish([snapshotMessage(sampleSnapshot(tenantId, 1n))]);
      const sink = new RecordingSink();
      const { plane } = start({ bus, sink, snapshotFile: file, snapshotFileDelayMs: 10 });
      await plane.ready;
      expect(plane.status()).toMatchObject({ warmStarted: false, tenants: 1 });
      await eventually('store written', () => versionsInFile(file).get(tenantId) === 1n);
    });

    it('leaves the files of tenants that did not change untouched while one tenant churns', async () => {
      dir = await mkdtemp(path.join(tmpdir(), 've-config-plane-'));
      const file = path.join(dir, 'snapshots.json');
      const bus = createInMemorySnapshotBus();
      const quiet = Array.from({ length: 5 }, () => randomUUID());
      const churning = randomUUID();
      await bus.publish([...quiet, churning].map((id) => snapshotMessage(sampleSnapshot(id, 1n))));
      const { plane } = start({
        bus,
        sink: new RecordingSink(),
        snapshotFile: file,
        snapshotFileDelayMs: 10,
        snapshotFileIntervalMs: 10,
      });
      await plane.ready;
      await eventually('store written', () => versionsInFile(file).size === quiet.length + 1);
      // A rename over a tenant's file gives it a new inode.
      const inodes = async () =>
        Promise.all(quiet.map(async (id) => (await stat(path.join(file, tenantFileName(id)))).ino));
      const before = await inodes();

      for (let version = 2n; version <= 4n; version++) {
        await bus.publish([snapshotMessage(sampleSnapshot(churning, version))]);
        await eventually(`v${version} in the store`, () => versionsInFile(file).get(churning) === version);
      }

      expect(await inodes()).toEqual(before);
    });
  });
  it('applies a large tenant in slices: other work runs meanwhile, and the tenant serves its previous version until the new one is complete', async () => {
    const bus = createInMemorySnapshotBus();
    const store = new GatewayConfigStore({
      baseDomains: ['localhost'],
      createUpstreamSet: () => ({ acquire: () => undefined, close: async () => {} }),
    });
    const origin = { id: randomUUID(), targets: ['http://10.0.0.1:80'] };
    const largeTenantId = randomUUID();
    const large = (version: number) =>
      buildSnapshot({
        version,
        tenantId: largeTenantId,
        subdomain: 'large',
        origins: [origin],
        routes: Array.from({ length: 50 }, (_, index) => ({
          origin_id: origin.id,
          path_pattern: `/v${version}/r${index}/*`,
        })),
      });
    const small = buildSnapshot({ version: 2, subdomain: 'small', origins: [origin], routes: [] });
    await bus.publish([snapshotMessage(large(1)), snapshotMessage(small)]);
    // The store as the config plane sees it, telling when an apply is underway.
    let applying = false;
    const sink: TenantConfigSink = {
      apply(snapshot) {
        applying = true;
        try {
          return store.apply(snapshot);
        } finally {
          applying = false;
        }
      },
      async applyInSlices(snapshot, slices) {
        applying = true;
        try {
          return await store.applyInSlices(snapshot, slices);
        } finally {
          applying = false;
        }
      },
      remove: (tenantId) => store.remove(tenantId),
      appliedVersions: () => store.appliedVersions(),
    };
    const { plane } = start({ bus, sink, sliceBudgetMs: 0 });
    await plane.ready;

    // Another tenant's requests, one a turn of the event loop, until the large tenant's next version serves.
    const servedDuringApply: Array<{ large: bigint | undefined; small: string | undefined }> = [];
    const requests = new Promise<void>((resolve) => {
      const request = () => {
        const served = store.resolveHost('large.localhost')?.version;
        if (served === 2n) return resolve();
        if (applying) {
          servedDuringApply.push({ large: served, small: store.resolveHost('small.localhost')?.id });
        }
        setImmediate(request);
      };
      setImmediate(request);
    });
    await bus.publish([snapshotMessage(large(2))]);
    await requests;

    expect(servedDuringApply.length).toBeGreaterThan(0);
    expect(servedDuringApply).toEqual(servedDuringApply.map(() => ({ large: 1n, small: small.tenant_id })));
    expect(store.resolveHost('large.localhost')?.router.match('GET', '/v2/r49/x')).toBeDefined();
    await store.close();
  });
});

/**
 * A sink whose applies cost each tenant `costMs` of the config plane's clock (a tenant's versions of
 * deep route patterns cost a replica tens to hundreds of ms each to compile), recording what it applied.
 */
class CostlySink extends RecordingSink {
  readonly appliedVersionsOf = new Map<string, bigint[]>();
  #elapsedMs = 0;

  constructor(readonly costMs: (tenantId: string) => number) {
    super();
  }

  /** Real time plus the applies' cost. */
  readonly now = (): number => performance.now() + this.#elapsedMs;

  override apply(snapshot: TenantSnapshot): boolean {
    this.#elapsedMs += this.costMs(snapshot.tenant_id);
    const applied = super.apply(snapshot);
    if (applied) {
      const versions = this.appliedVersionsOf.get(snapshot.tenant_id) ?? [];
      versions.push(BigInt(snapshot.version));
      this.appliedVersionsOf.set(snapshot.tenant_id, versions);
    }
    return applied;
  }
}

/** The same, applying in slices (as GatewayConfigStore does): the cost is read from the slices' busy time. */
class CostlySlicedSink extends CostlySink {
  async applyInSlices(snapshot: TenantSnapshot, slices: EventLoopSlices): Promise<boolean> {
    await slices.next();
    return this.apply(snapshot);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('config plane: a tenant whose versions are costly to apply', () => {
  const heavyId = randomUUID();
  const lightId = randomUUID();
  const heavyCostMs = 200;

  async function startWithCostlyHeavyTenant(Sink: typeof CostlySink = CostlySink) {
    const bus = createInMemorySnapshotBus();
    const sink = new Sink((tenantId) => (tenantId === heavyId ? heavyCostMs : 0));
    // 10 %: 200 ms of applying repaid in 2 s, with no burst.
    const { plane } = start({
      bus,
      sink,
      clock: { now: sink.now, cpuMs: sink.now },
      tenantApplySharePercent: 10,
      tenantApplyBurstMs: 0,
    });
    await plane.ready;
    return { bus, sink, plane };
  }

  it.each([
    ['at once', CostlySink],
    ['in slices', CostlySlicedSink],
  ])(
    'applies only the newest of its versions arriving faster than its share of the replica allows, and another tenant’s at once (applied %s)',
    async (_, Sink) => {
      const { bus, sink } = await startWithCostlyHeavyTenant(Sink);
      await bus.publish([snapshotMessage(sampleSnapshot(heavyId, 1n))]);
      await eventually('the first version applied', () => sink.tenants.has(heavyId));

      // An admin sending commands as fast as the admin API lets it: a version each.
      for (let version = 2n; version <= 10n; version++) {
        await bus.publish([snapshotMessage(sampleSnapshot(heavyId, version))]);
        await new Promise(setImmediate);
      }
      await bus.publish([snapshotMessage(sampleSnapshot(lightId, 1n))]);
      await eventually('the other tenant applied', () => sink.tenants.has(lightId));
      expect(sink.appliedVersions().get(heavyId)).toBe(1n);

      await eventually('the newest version applied', () => sink.appliedVersions().get(heavyId) === 10n);
      expect(sink.appliedVersionsOf.get(heavyId)).toEqual([1n, 10n]);
    },
  );

  it('does not count a version it has applied already, delivered again, as one that waited', async () => {
    const bus = createInMemorySnapshotBus();
    const sink = new CostlySink((tenantId) => (tenantId === heavyId ? heavyCostMs : 0));
    const { plane, registry } = start({
      bus,
      sink,
      clock: { now: sink.now, cpuMs: sink.now },
      tenantApplySharePercent: 10,
      tenantApplyBurstMs: 0,
    });
    await plane.ready;
    await bus.publish([snapshotMessage(sampleSnapshot(heavyId, 1n))]);
    await eventually('the first version applied', () => sink.tenants.has(heavyId));
    // Delivered at least once: a consumer's rebalance hands records it read over again.
    await bus.publish([snapshotMessage(sampleSnapshot(heavyId, 1n))]);
    await new Promise(setImmediate);
    await bus.publish([snapshotMessage(sampleSnapshot(heavyId, 2n))]);

    // Version 2 waits its turn, and is applied once it has had it: the copy of version 1 came before.
    await eventually('the second version applied', () => sink.appliedVersions().get(heavyId) === 2n);
    expect(await registry.metrics()).toMatch(
      new RegExp(`vantageedge_config_versions_waited_total\\{tenant="${heavyId}"\\} 1\\b`),
    );
  });

  it('never applies a version that waited its turn when the tenant is deleted meanwhile', async () => {
    const { bus, sink } = await startWithCostlyHeavyTenant();
    await bus.publish([snapshotMessage(sampleSnapshot(heavyId, 1n))]);
    await eventually('the first version applied', () => sink.tenants.has(heavyId));
    await bus.publish([snapshotMessage(sampleSnapshot(heavyId, 2n))]);
    await new Promise(setImmediate);
    await bus.publish([{ kind: 'tombstone', tenantId: heavyId, version: 3n }]);
    await eventually('the tenant removed', () => !sink.tenants.has(heavyId));

    // Past the time the deleted tenant's version would have waited (200 ms at 10 %: 2 s).
    await sleep(heavyCostMs * 10 + 500);
    expect(sink.tenants.has(heavyId)).toBe(false);
    expect(sink.appliedVersionsOf.get(heavyId)).toEqual([1n]);
  });
});

describe('config plane: closing while a version that waited its turn is being applied', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('resolves close() only once that apply is over, with the snapshot files holding what the replica served', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 've-config-plane-'));
    const file = path.join(dir, 'snapshots');
    const heavyId = randomUUID();
    let releaseApply!: () => void;
    const applyReleased = new Promise<void>((resolve) => {
      releaseApply = resolve;
    });
    let waitedApplyStarted = false;
    /** Its second version's apply is held until the test lets it go on. */
    class HeldSink extends CostlySink {
      async applyInSlices(snapshot: TenantSnapshot, slices: EventLoopSlices): Promise<boolean> {
        if (snapshot.version === '2') {
          waitedApplyStarted = true;
          await applyReleased;
        }
        await slices.next();
        return this.apply(snapshot);
      }
    }
    const bus = createInMemorySnapshotBus();
    // 20 ms of applying at 10 %: the next version waits 200 ms.
    const sink = new HeldSink(() => 20);
    const { plane } = start({
      bus,
      sink,
      clock: { now: sink.now, cpuMs: sink.now },
      tenantApplySharePercent: 10,
      tenantApplyBurstMs: 0,
      snapshotFile: file,
      snapshotFileDelayMs: 10,
      snapshotFileIntervalMs: 10,
    });
    await plane.ready;
    await bus.publish([snapshotMessage(sampleSnapshot(heavyId, 1n))]);
    await eventually('the first version written', () => versionsInFile(file).get(heavyId) === 1n);
    await bus.publish([snapshotMessage(sampleSnapshot(heavyId, 2n))]);
    await eventually('the waited version being applied', () => waitedApplyStarted);

    const closed = plane.close();
    releaseApply();
    await closed;
    const served = sink.appliedVersions().get(heavyId);
    await sleep(100);
    // Nothing changes once closed, and a replica warm-started from the files serves what this one did.
    expect(sink.appliedVersions().get(heavyId)).toBe(served);
    expect(versionsInFile(file).get(heavyId)).toBe(served);
  });
});

describe('config plane: a host moving between tenants while one of them waits its turn', () => {
  it('is served by the tenant that claimed it last at once, whichever tenant’s version waits', async () => {
    const store = new GatewayConfigStore({
      baseDomains: ['localhost'],
      createUpstreamSet: () => ({ acquire: () => undefined, close: async () => {} }),
    });
    const heavyId = randomUUID();
    const otherId = randomUUID();
    let elapsedMs = 0;
    const now = () => performance.now() + elapsedMs;
    // The heavy tenant's applies cost 20 ms of the clock: at 10 % its next version waits 200 ms.
    const sink: TenantConfigSink = {
      apply: (snapshot) => {
        if (snapshot.tenant_id === heavyId) elapsedMs += 20;
        return store.apply(snapshot);
      },
      applyInSlices: async (snapshot, slices) => {
        if (snapshot.tenant_id === heavyId) elapsedMs += 20;
        return store.applyInSlices(snapshot, slices);
      },
      remove: (tenantId) => store.remove(tenantId),
      appliedVersions: () => store.appliedVersions(),
    };
    const bus = createInMemorySnapshotBus();
    const { plane } = start({
      bus,
      sink,
      clock: { now, cpuMs: now },
      tenantApplySharePercent: 10,
      tenantApplyBurstMs: 0,
      sliceBudgetMs: 0,
    });
    await plane.ready;
    const domain = 'shop.example.com';
    const heavy = (version: number, customDomains: string[]) =>
      buildSnapshot({
        version,
        tenantId: heavyId,
        subdomain: 'heavy',
        customDomains,
        origins: [],
        routes: [],
      });
    await bus.publish([snapshotMessage(heavy(1, [domain]))]);
    await eventually('the heavy tenant applied', () => store.resolveHost(domain)?.id === heavyId);

    // The heavy tenant lets the domain go (its version waits), then the other tenant verifies it.
    await bus.publish([snapshotMessage(heavy(2, []))]);
    await bus.publish([
      snapshotMessage(
        buildSnapshot({
          version: 3,
          tenantId: otherId,
          subdomain: 'other',
          customDomains: [domain],
          origins: [],
          routes: [],
        }),
      ),
    ]);
    await eventually('the other tenant applied', () => store.appliedVersions().get(otherId) === 3n);
    expect(store.appliedVersions().get(heavyId)).toBe(1n);
    expect(store.resolveHost(domain)?.id).toBe(otherId);

    await eventually('the waited version applied', () => store.appliedVersions().get(heavyId) === 2n);
    expect(store.resolveHost(domain)?.id).toBe(otherId);
    await store.close();
  });
});
