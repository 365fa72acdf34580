import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { silentLogger } from '@vantageedge/shared/observability/logger';
import { createInMemorySnapshotBus } from '@vantageedge/shared/snapshot-bus/in-memory-snapshot-bus';
import { sampleSnapshot, snapshotMessage } from '@vantageedge/shared/snapshot-bus/testing';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type ConfigPlane, startConfigPlane } from './config-plane.js';
import { tenantFileName } from './snapshot-store.js';
import { RecordingSink } from './testing.js';

/**
 * Every flush of the store the config plane starts and every tenant file it renames into place;
 * `hold` keeps the next flushes from finishing.
 */
const writes = vi.hoisted(() => ({
  started: 0,
  filesWritten: [] as string[],
  pending: new Set<Promise<void>>(),
  hold: undefined as Promise<void> | undefined,
}));

vi.mock('./snapshot-store.js', async (importOriginal) => {
  const original = await importOriginal<typeof import('./snapshot-store.js')>();
  const countingFs: import('./snapshot-store.js').SnapshotStoreFs = {
    ...fs,
    rename: async (from, to) => {
      writes.filesWritten.push(path.basename(String(to)));
      return fs.rename(from, to);
    },
  };
  class CountingSnapshotStore extends original.SnapshotStore {
    constructor(dir: string) {
      super(dir, countingFs);
    }
    override flush(): Promise<void> {
      writes.started += 1;
      const run = (): Promise<void> => {
        const write = super.flush();
        const tracked = write.catch(() => {}).finally(() => writes.pending.delete(tracked));
        writes.pending.add(tracked);
        return write;
      };
      // A held flush is not pending until the disk lets it through.
      return writes.hold ? writes.hold.then(run) : run();
    }
  }
  return { ...original, SnapshotStore: CountingSnapshotStore };
});

const INTERVAL_MS = 10_000;
const planes: ConfigPlane[] = [];
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 've-snapshot-pacing-'));
  writes.started = 0;
  writes.filesWritten = [];
  writes.hold = undefined;
  // Only the config plane's timers are faked: file I/O and the bus (setImmediate) run for real.
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
});

afterEach(async () => {
  vi.useRealTimers();
  await Promise.all(planes.splice(0).map((plane) => plane.close()));
  await rm(dir, { recursive: true, force: true });
});

/** Lets deliveries and file writes in progress finish (real I/O; fake time stands still). */
async function settle(): Promise<void> {
  for (let round = 0; round < 3; round++) {
    for (let turn = 0; turn < 20; turn++) await new Promise((resolve) => setImmediate(resolve));
    await Promise.all(writes.pending);
  }
}

function versionInFile(store: string, tenantId: string): bigint | undefined {
  const text = readFileSync(path.join(store, tenantFileName(tenantId)), 'utf8');
  return BigInt((JSON.parse(text) as { version: string }).version);
}

async function startedPlane(file: string) {
  const bus = createInMemorySnapshotBus();
  const tenantId = randomUUID();
  const others = Array.from({ length: 50 }, () => randomUUID());
  await bus.publish([tenantId, ...others].map((id) => snapshotMessage(sampleSnapshot(id, 1n))));
  const plane = startConfigPlane({
    bus,
    sink: new RecordingSink(),
    registry: new Registry(),
    logger: silentLogger,
    replicaId: randomUUID(),
    snapshotFile: file,
    snapshotFileIntervalMs: INTERVAL_MS,
  });
  planes.push(plane);
  await settle();
  await plane.ready;
  await vi.advanceTimersByTimeAsync(INTERVAL_MS);
  await settle();
  expect(versionInFile(file, tenantId)).toBe(1n);
  const change = async (version: bigint) => {
    await bus.publish([snapshotMessage(sampleSnapshot(tenantId, version, { name: `v${version}` }))]);
    await settle();
  };
  return { tenantId, change };
}

describe('the snapshot store while a tenant keeps changing', () => {
  it('rewrites only that tenant’s file, at most once per interval, with the newest change one interval after it', async () => {
    const file = path.join(dir, 'snapshots.json');
    const { tenantId, change } = await startedPlane(file);
    writes.started = 0;
    writes.filesWritten = [];

    // 40 changes, one every half second: 20 s.
    for (let version = 2n; version <= 41n; version++) {
      await change(version);
      await vi.advanceTimersByTimeAsync(500);
      await settle();
    }
    expect(writes.started).toBeLessThanOrEqual(20_000 / INTERVAL_MS + 1);

    await vi.advanceTimersByTimeAsync(INTERVAL_MS);
    await settle();
    expect(versionInFile(file, tenantId)).toBe(41n);
    expect(new Set(writes.filesWritten)).toEqual(new Set([tenantFileName(tenantId)]));
    expect(writes.filesWritten.length).toBeLessThanOrEqual(30_000 / INTERVAL_MS + 1);
  });

  it('does not pile up rewrites behind a slow disk: one write at a time, the newest state next', async () => {
    const file = path.join(dir, 'snapshots.json');
    const { tenantId, change } = await startedPlane(file);
    let release!: () => void;
    writes.hold = new Promise<void>((resolve) => {
      release = resolve;
    });
    writes.started = 0;

    // The disk takes 30 s for a write while the tenant changes every second.
    for (let version = 2n; version <= 31n; version++) {
      await change(version);
      await vi.advanceTimersByTimeAsync(1000);
    }
    const startedWhileSlow = writes.started;
    writes.hold = undefined;
    release();
    await settle();
    await vi.advanceTimersByTimeAsync(INTERVAL_MS);
    await settle();

    expect(startedWhileSlow).toBe(1);
    // After the slow write: one more, with everything that changed meanwhile.
    expect(writes.started).toBe(2);
    expect(versionInFile(file, tenantId)).toBe(31n);
  });
});
