import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { silentLogger } from '@vantageedge/shared/observability/logger';
import { createInMemorySnapshotBus } from '@vantageedge/shared/snapshot-bus/in-memory-snapshot-bus';
import { sampleSnapshot, snapshotMessage } from '@vantageedge/shared/snapshot-bus/testing';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type ConfigPlane, startConfigPlane } from './config-plane.js';
import * as snapshotFile from './snapshot-file.js';
import { RecordingSink } from './testing.js';

/** Every whole-file write the config plane starts; `hold` keeps the next ones from finishing. */
const writes = vi.hoisted(() => ({
  started: 0,
  pending: new Set<Promise<void>>(),
  hold: undefined as Promise<void> | undefined,
}));

vi.mock('./snapshot-file.js', async (importOriginal) => {
  const original = await importOriginal<typeof import('./snapshot-file.js')>();
  return {
    ...original,
    writeSnapshotJson: (file: string, json: Iterable<Buffer>) => {
      writes.started += 1;
      const run = (): Promise<void> => {
        const write = original.writeSnapshotJson(file, json);
        const tracked = write.catch(() => {}).finally(() => writes.pending.delete(tracked));
        writes.pending.add(tracked);
        return write;
      };
      // A held write is not pending until the disk lets it through.
      return writes.hold ? writes.hold.then(run) : run();
    },
  };
});

const INTERVAL_MS = 10_000;
const planes: ConfigPlane[] = [];
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 've-snapshot-pacing-'));
  writes.started = 0;
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

function versionInFile(file: string, tenantId: string): bigint | undefined {
  const { snapshots } = JSON.parse(readFileSync(file, 'utf8')) as {
    snapshots: Array<{ tenant_id: string; version: string }>;
  };
  const version = snapshots.find((snapshot) => snapshot.tenant_id === tenantId)?.version;
  return version === undefined ? undefined : BigInt(version);
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

describe('the snapshot file while a tenant keeps changing', () => {
  it('is rewritten at most once per interval, and holds the newest change one interval after it', async () => {
    const file = path.join(dir, 'snapshots.json');
    const { tenantId, change } = await startedPlane(file);
    writes.started = 0;

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

describe('the snapshot file after a crash', () => {
  it('is the previous whole file when a rewrite is cut short, with no partial file left behind', async () => {
    vi.useRealTimers();
    const file = path.join(dir, 'snapshots.json');
    const tenantId = randomUUID();
    await snapshotFile.writeSnapshotFile(file, [sampleSnapshot(tenantId, 1n, { name: 'whole' })]);
    function* cutShort(): Generator<Buffer> {
      yield Buffer.from(JSON.stringify(sampleSnapshot(tenantId, 2n)));
      throw new Error('process killed');
    }
    await expect(snapshotFile.writeSnapshotJson(file, cutShort())).rejects.toThrow('process killed');

    const loaded = await snapshotFile.readSnapshotFile(file);
    expect(loaded.snapshots.map((snapshot) => snapshot.tenant.name)).toEqual(['whole']);
    expect(await readdir(dir)).toEqual(['snapshots.json']);
  });
});
