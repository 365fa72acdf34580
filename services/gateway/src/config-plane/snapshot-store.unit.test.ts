import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sampleSnapshot } from '@vantageedge/shared/snapshot-bus/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  SNAPSHOT_READ_CONCURRENCY,
  SnapshotStore,
  type SnapshotStoreFs,
  tenantFileName,
} from './snapshot-store.js';

let dir: string;
let storeDir: string;

beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(tmpdir(), 've-snapshot-store-'));
  storeDir = path.join(dir, 'snapshots');
});

afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

/**
 * The real file system, except that the first call of `operation` matching `when` fails as a killed
 * process would: the step does not happen and nothing after it runs (not even the clean-up).
 */
function crashingFs(operation: 'writeFile' | 'rename', when: (target: string) => boolean): SnapshotStoreFs {
  let crashed = false;
  const crash = (target: string): boolean => {
    if (crashed) throw new Error('process already killed');
    if (!when(target)) return false;
    crashed = true;
    return true;
  };
  return {
    ...fs,
    writeFile: (async (file: string, ...rest: unknown[]) => {
      if (operation === 'writeFile' && crash(file)) throw new Error('process killed');
      return (fs.writeFile as (...args: unknown[]) => Promise<void>)(file, ...rest);
    }) as SnapshotStoreFs['writeFile'],
    rename: async (from, to) => {
      if (operation === 'rename' && crash(String(from))) throw new Error('process killed');
      return fs.rename(from, to);
    },
    rm: async (target, options) => {
      if (crashed) throw new Error('process already killed');
      return fs.rm(target, options);
    },
  };
}

const names = (loaded: { snapshots: Array<{ tenant: { name: string } }> }) =>
  loaded.snapshots.map((snapshot) => snapshot.tenant.name).sort();

async function writtenStore(tenants: Array<[string, string]>): Promise<void> {
  const store = new SnapshotStore(storeDir);
  for (const [tenantId, name] of tenants) store.set(sampleSnapshot(tenantId, 1n, { name }));
  await store.flush();
}

describe('snapshot store', () => {
  it('writes one file per changed tenant, deletes removed tenants’ files, and loads what it wrote', async () => {
    const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()];
    await writtenStore([
      [a, 'a'],
      [b, 'b'],
      [c, 'c'],
    ]);

    const store = new SnapshotStore(storeDir);
    expect(names(await store.load())).toEqual(['a', 'b', 'c']);
    expect(store.hasChanges).toBe(false);
    store.delete(b);
    store.set(sampleSnapshot(c, 2n, { name: 'c2' }));
    await store.flush();

    expect((await fs.readdir(storeDir)).sort()).toEqual([tenantFileName(a), tenantFileName(c)].sort());
    const reloaded = await new SnapshotStore(storeDir).load();
    expect(names(reloaded)).toEqual(['a', 'c2']);
    expect(reloaded.skipped).toEqual([]);
  });

  it('names files by an encoding of the tenant id that cannot leave the directory', () => {
    for (const tenantId of ['../../etc/passwd', '/abs', '..', 'a/b\\c']) {
      const name = tenantFileName(tenantId);
      expect(name).toMatch(/^[A-Za-z0-9_-]+\.json$/);
      expect(path.dirname(path.join(storeDir, name))).toBe(storeDir);
    }
  });

  it('reads a store larger than its read concurrency, several files at once but never more than the bound', async () => {
    const tenants = Array.from({ length: SNAPSHOT_READ_CONCURRENCY * 3 }, (_, index): [string, string] => [
      randomUUID(),
      `t${String(index).padStart(3, '0')}`,
    ]);
    await writtenStore(tenants);
    await fs.writeFile(path.join(storeDir, `${tenantFileName(randomUUID())}.1234.tmp`), '{"torn');
    let reading = 0;
    let mostAtOnce = 0;
    const countingFs: SnapshotStoreFs = {
      ...fs,
      readFile: (async (...args: unknown[]) => {
        reading += 1;
        mostAtOnce = Math.max(mostAtOnce, reading);
        try {
          return await (fs.readFile as (...a: unknown[]) => Promise<string>)(...args);
        } finally {
          reading -= 1;
        }
      }) as SnapshotStoreFs['readFile'],
    };

    const loaded = await new SnapshotStore(storeDir, countingFs).load();
    expect(names(loaded)).toEqual(tenants.map(([, name]) => name));
    expect(loaded.skipped).toEqual([]);
    expect(mostAtOnce).toBeGreaterThan(1);
    expect(mostAtOnce).toBeLessThanOrEqual(SNAPSHOT_READ_CONCURRENCY);
    expect((await fs.readdir(storeDir)).some((name) => name.endsWith('.tmp'))).toBe(false);
  });

  describe('durability of the directory', () => {
    /**
     * The real file system, recording renames, removals and directory syncs in order; the first
     * directory syncs fail with `syncErrors`, one each.
     */
    function recordingFs(...syncErrors: NodeJS.ErrnoException[]): { fs: SnapshotStoreFs; steps: string[] } {
      const steps: string[] = [];
      const recording: SnapshotStoreFs = {
        ...fs,
        rename: async (from, to) => {
          steps.push(`rename ${path.basename(String(to))}`);
          return fs.rename(from, to);
        },
        rm: async (target, options) => {
          steps.push(`rm ${path.basename(String(target))}`);
          return fs.rm(target, options);
        },
        open: (async (file: string, ...rest: unknown[]) => {
          const handle = await (fs.open as (...a: unknown[]) => Promise<fs.FileHandle>)(file, ...rest);
          const sync = handle.sync.bind(handle);
          handle.sync = async () => {
            steps.push(`sync ${file}`);
            const syncError = syncErrors.shift();
            if (syncError) throw syncError;
            return sync();
          };
          return handle;
        }) as SnapshotStoreFs['open'],
      };
      return { fs: recording, steps };
    }

    const errno = (code: string) => Object.assign(new Error(`${code}: directory sync`), { code });

    it('syncs the directory once per flush, after every rename and removal of that flush', async () => {
      const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()];
      await writtenStore([[c, 'c']]);
      const { fs: recording, steps } = recordingFs();
      const store = new SnapshotStore(storeDir, recording);
      store.set(sampleSnapshot(a, 1n, { name: 'a' }));
      store.set(sampleSnapshot(b, 1n, { name: 'b' }));
      store.delete(c);
      await store.flush();

      const syncs = steps.filter((step) => step === `sync ${storeDir}`);
      expect(syncs).toHaveLength(1);
      expect(steps.at(-1)).toBe(`sync ${storeDir}`);
      expect(steps.filter((step) => step.startsWith('rename')).length).toBe(2);
      expect(names(await new SnapshotStore(storeDir).load())).toEqual(['a', 'b']);
    });

    it('replacing the earlier single file syncs the staged directory before it moves in, and its parent after', async () => {
      const tenantId = randomUUID();
      await fs.writeFile(
        storeDir,
        JSON.stringify({ written_at: '2026-01-01T00:00:00.000Z', snapshots: [sampleSnapshot(tenantId, 1n)] }),
      );
      const { fs: recording, steps } = recordingFs();
      const store = new SnapshotStore(storeDir, recording);
      for (const snapshot of (await store.load()).snapshots) store.set(snapshot);
      await store.flush();

      const moves = steps.filter((step) => !step.startsWith(`rename ${tenantFileName(tenantId)}`));
      expect(moves.slice(-5)).toEqual([
        `sync ${storeDir}.staging`,
        `rename ${path.basename(storeDir)}.legacy`,
        `rename ${path.basename(storeDir)}`,
        `rm ${path.basename(storeDir)}.legacy`,
        `sync ${dir}`,
      ]);
    });

    it.each(['EISDIR', 'EINVAL', 'EPERM'])(
      'writes the files all the same where the platform refuses to sync a directory (%s)',
      async (code) => {
        const tenantId = randomUUID();
        await fs.mkdir(storeDir);
        const store = new SnapshotStore(storeDir, recordingFs(errno(code)).fs);
        store.set(sampleSnapshot(tenantId, 1n, { name: 'written' }));
        await store.flush();
        expect(store.hasChanges).toBe(false);
        expect(names(await new SnapshotStore(storeDir).load())).toEqual(['written']);
      },
    );

    it('writes the tenants again at the next flush when the directory sync fails', async () => {
      const tenantId = randomUUID();
      await fs.mkdir(storeDir);
      const store = new SnapshotStore(storeDir, recordingFs(errno('EIO')).fs);
      store.set(sampleSnapshot(tenantId, 1n, { name: 'unsure' }));
      await expect(store.flush()).rejects.toThrow('EIO');
      expect(store.hasChanges).toBe(true);

      await store.flush();
      expect(store.hasChanges).toBe(false);
      expect(names(await new SnapshotStore(storeDir).load())).toEqual(['unsure']);
    });
  });

  describe('after a crash', () => {
    it('keeps a tenant’s previous file when the process dies before the rename, and ignores the partial one', async () => {
      const tenantId = randomUUID();
      await writtenStore([[tenantId, 'whole']]);
      const store = new SnapshotStore(
        storeDir,
        crashingFs('rename', (from) => from.endsWith('.tmp')),
      );
      store.set(sampleSnapshot(tenantId, 2n, { name: 'newer' }));
      await expect(store.flush()).rejects.toThrow(/killed/);
      expect((await fs.readdir(storeDir)).some((name) => name.endsWith('.tmp'))).toBe(true);

      const loaded = await new SnapshotStore(storeDir).load();
      expect(names(loaded)).toEqual(['whole']);
      expect(loaded.skipped).toEqual([]);
      expect(await fs.readdir(storeDir)).toEqual([tenantFileName(tenantId)]);
    });

    it('writes a tenant whose write failed at the next flush', async () => {
      const tenantId = randomUUID();
      let failures = 1;
      const store = new SnapshotStore(storeDir, {
        ...fs,
        rename: async (from, to) => {
          if (failures-- > 0) throw new Error('disk full');
          return fs.rename(from, to);
        },
      });
      store.set(sampleSnapshot(tenantId, 1n, { name: 'retried' }));
      await expect(store.flush()).rejects.toThrow('disk full');
      expect(await fs.readdir(storeDir)).toEqual([]); // the temporary file was removed
      expect(store.hasChanges).toBe(true);

      await store.flush();
      expect(names(await new SnapshotStore(storeDir).load())).toEqual(['retried']);
    });

    it('writes at the next flush a tenant changed while its file was being written', async () => {
      const tenantId = randomUUID();
      let renamed!: () => void;
      const renaming = new Promise<void>((resolve) => {
        renamed = resolve;
      });
      let changeArrived!: () => void;
      const changed = new Promise<void>((resolve) => {
        changeArrived = resolve;
      });
      const store = new SnapshotStore(storeDir, {
        ...fs,
        rename: async (from, to) => {
          renamed();
          await changed;
          return fs.rename(from, to);
        },
      });
      store.set(sampleSnapshot(tenantId, 1n, { name: 'first' }));
      const flushing = store.flush();
      await renaming;
      store.set(sampleSnapshot(tenantId, 2n, { name: 'changed meanwhile' }));
      changeArrived();
      await flushing;
      expect(store.hasChanges).toBe(true);

      await store.flush();
      expect(names(await new SnapshotStore(storeDir).load())).toEqual(['changed meanwhile']);
    });

    it('writes the other tenants when one tenant’s file keeps failing', async () => {
      const [failing, other] = [randomUUID(), randomUUID()];
      const failingFile = tenantFileName(failing);
      const diskFull: SnapshotStoreFs = {
        ...fs,
        writeFile: (async (file: string, ...rest: unknown[]) => {
          if (path.basename(file).startsWith(failingFile)) throw new Error('ENOSPC: no space left on device');
          return (fs.writeFile as (...args: unknown[]) => Promise<void>)(file, ...rest);
        }) as SnapshotStoreFs['writeFile'],
      };
      const store = new SnapshotStore(storeDir, diskFull);
      store.set(sampleSnapshot(failing, 1n, { name: 'failing' }));
      store.set(sampleSnapshot(other, 1n, { name: 'after it' }));
      await expect(store.flush()).rejects.toThrow('ENOSPC');
      await expect(store.flush()).rejects.toThrow('ENOSPC');
      expect(store.hasChanges).toBe(true);

      expect(names(await new SnapshotStore(storeDir).load())).toEqual(['after it']);
    });

    it('ignores a removal whose key no snapshot can carry (a tombstone key is not checked upstream)', async () => {
      const store = new SnapshotStore(storeDir);
      // Its file name would exceed NAME_MAX (255 bytes): the removal would fail at every flush.
      store.delete('k'.repeat(200));
      store.set(sampleSnapshot(randomUUID(), 1n, { name: 'kept' }));
      await store.flush();
      expect(store.hasChanges).toBe(false);
      expect(names(await new SnapshotStore(storeDir).load())).toEqual(['kept']);
    });
  });

  describe('corruption', () => {
    it('skips and reports a torn tenant file and serves the other tenants; the file is deleted at the next flush', async () => {
      const [good, torn] = [randomUUID(), randomUUID()];
      await writtenStore([
        [good, 'good'],
        [torn, 'torn'],
      ]);
      const tornFile = path.join(storeDir, tenantFileName(torn));
      await fs.writeFile(tornFile, (await fs.readFile(tornFile, 'utf8')).slice(0, 20));

      const store = new SnapshotStore(storeDir);
      const loaded = await store.load();
      expect(names(loaded)).toEqual(['good']);
      expect(loaded.skipped).toEqual([{ file: tornFile, reason: expect.any(String) }]);

      await store.flush();
      expect(await fs.readdir(storeDir)).toEqual([tenantFileName(good)]);
    });

    it('never serves a tenant’s file under another tenant (a file holding another tenant’s snapshot is skipped)', async () => {
      const [victim, other] = [randomUUID(), randomUUID()];
      await writtenStore([[other, 'other']]);
      await fs.copyFile(
        path.join(storeDir, tenantFileName(other)),
        path.join(storeDir, tenantFileName(victim)),
      );

      const loaded = await new SnapshotStore(storeDir).load();
      expect(loaded.snapshots.map((snapshot) => snapshot.tenant_id)).toEqual([other]);
      expect(loaded.skipped).toEqual([
        { file: path.join(storeDir, tenantFileName(victim)), reason: "another tenant's snapshot" },
      ]);
    });

    it('skips valid JSON that is not a snapshot, and files not named for a tenant', async () => {
      const [good, invalid] = [randomUUID(), randomUUID()];
      await writtenStore([[good, 'good']]);
      await fs.writeFile(path.join(storeDir, tenantFileName(invalid)), '{"tenant_id":"x"}');
      await fs.writeFile(path.join(storeDir, 'notes.txt'), 'hello');

      const loaded = await new SnapshotStore(storeDir).load();
      expect(names(loaded)).toEqual(['good']);
      expect(loaded.skipped.map((skipped) => skipped.reason).sort()).toEqual([
        'invalid snapshot',
        'not a tenant snapshot file name',
      ]);
    });
  });

  describe('a directory that is not the replica’s own', () => {
    it('makes a directory that existed before, open to other users, owner-only at the first write', async () => {
      // As a volume's mount point or an operator's `mkdir -p` leaves it: file names are tenant ids.
      await fs.mkdir(storeDir);
      await fs.chmod(storeDir, 0o755);
      const store = new SnapshotStore(storeDir);
      await store.load();
      store.set(sampleSnapshot(randomUUID(), 1n));
      await store.flush();
      expect((await fs.stat(storeDir)).mode & 0o777).toBe(0o700);
    });

    it('serves none of the files of a directory other users may write to, and deletes them at the next write', async () => {
      const tenantId = randomUUID();
      await writtenStore([[tenantId, 'planted']]);
      await fs.chmod(storeDir, 0o777);

      const store = new SnapshotStore(storeDir);
      const loaded = await store.load();
      expect(loaded.snapshots).toEqual([]);
      expect(loaded.skipped).toEqual([{ file: storeDir, reason: 'directory writable by other users' }]);

      await store.flush();
      expect((await fs.stat(storeDir)).mode & 0o777).toBe(0o700);
      expect(await fs.readdir(storeDir)).toEqual([]);
    });

    it('follows no symbolic link: an entry that is not a regular file is skipped', async () => {
      const tenantId = randomUUID();
      const elsewhere = path.join(dir, 'elsewhere');
      const store = new SnapshotStore(elsewhere);
      store.set(sampleSnapshot(tenantId, 1n, { name: 'elsewhere' }));
      await store.flush();
      await writtenStore([[randomUUID(), 'own']]);
      const link = path.join(storeDir, tenantFileName(tenantId));
      await fs.symlink(path.join(elsewhere, tenantFileName(tenantId)), link);

      const loaded = await new SnapshotStore(storeDir).load();
      expect(names(loaded)).toEqual(['own']);
      expect(loaded.skipped).toEqual([{ file: link, reason: 'not a regular file' }]);
    });
  });

  describe('two replicas configured with the same directory', () => {
    /**
     * The real file system, except that writeFile writes its data in two writes, as a large file is
     * written, and waits between them until `resume` is called: the other replica runs meanwhile.
     */
    function pausedWritesFs(): { fs: SnapshotStoreFs; paused: Promise<void>; resume: () => void } {
      let resume!: () => void;
      let announcePause!: () => void;
      const resumed = new Promise<void>((resolve) => {
        resume = resolve;
      });
      const paused = new Promise<void>((resolve) => {
        announcePause = resolve;
      });
      const writeFile = async (
        file: string,
        data: string,
        options: { flag?: string; mode?: number } = {},
      ): Promise<void> => {
        const bytes = Buffer.from(data);
        const handle = await fs.open(file, options.flag ?? 'w', options.mode);
        try {
          await handle.write(bytes.subarray(0, bytes.length / 2));
          announcePause();
          await resumed;
          await handle.write(bytes.subarray(bytes.length / 2));
          await handle.sync();
        } finally {
          await handle.close();
        }
      };
      return { fs: { ...fs, writeFile: writeFile as SnapshotStoreFs['writeFile'] }, paused, resume };
    }

    it('never tear each other’s files when they write the same tenant at once (containers share a pid)', async () => {
      const tenantId = randomUUID();
      const slow = pausedWritesFs();
      const replicaA = new SnapshotStore(storeDir, slow.fs);
      const replicaB = new SnapshotStore(storeDir);
      replicaA.set(sampleSnapshot(tenantId, 2n, { name: 'a'.repeat(2000), routes: 3 }));
      replicaB.set(sampleSnapshot(tenantId, 2n, { name: 'b' }));

      const writingA = replicaA.flush().catch(() => undefined);
      await slow.paused;
      await replicaB.flush().catch(() => undefined);
      slow.resume();
      await writingA;

      const loaded = await new SnapshotStore(storeDir).load();
      expect(loaded.skipped).toEqual([]);
      expect(loaded.snapshots.map((snapshot) => snapshot.tenant_id)).toEqual([tenantId]);
    });
  });

  describe('the earlier single-file snapshot at the path', () => {
    async function legacyFile(tenants: Array<[string, string]>, tail = ''): Promise<void> {
      const snapshots = tenants.map(([tenantId, name]) => sampleSnapshot(tenantId, 1n, { name }));
      await fs.writeFile(
        storeDir,
        `{"written_at":"2026-01-01T00:00:00.000Z","snapshots":${JSON.stringify(snapshots)}${tail}`,
        { mode: 0o600 },
      );
    }

    it('is read once, then replaced by the per-tenant store at the first flush', async () => {
      const [a, b] = [randomUUID(), randomUUID()];
      await legacyFile(
        [
          [a, 'a'],
          [b, 'b'],
        ],
        '}',
      );
      const store = new SnapshotStore(storeDir);
      const loaded = await store.load();
      expect(names(loaded)).toEqual(['a', 'b']);
      expect(store.loadedLegacyFile).toBe(true);
      for (const snapshot of loaded.snapshots) store.set(snapshot);
      await store.flush();

      expect((await fs.stat(storeDir)).isDirectory()).toBe(true);
      expect((await fs.readdir(dir)).sort()).toEqual(['snapshots']);
      const reloaded = new SnapshotStore(storeDir);
      expect(names(await reloaded.load())).toEqual(['a', 'b']);
      expect(reloaded.loadedLegacyFile).toBe(false);
    });

    it('a torn one is skipped (cold start) and replaced at the first flush', async () => {
      await legacyFile([[randomUUID(), 'a']], ',{"tenant');
      const store = new SnapshotStore(storeDir);
      const loaded = await store.load();
      expect(loaded.snapshots).toEqual([]);
      expect(loaded.skipped).toHaveLength(1);
      const tenantId = randomUUID();
      store.set(sampleSnapshot(tenantId, 1n, { name: 'fresh' }));
      await store.flush();
      expect(names(await new SnapshotStore(storeDir).load())).toEqual(['fresh']);
    });

    it.each([
      ['writing the staged tenants', crashingFs('writeFile', () => true)],
      ['moving the file aside', crashingFs('rename', (from) => from === storeDir)],
      ['moving the staged directory in', crashingFs('rename', (from) => from.endsWith('.staging'))],
    ])('keeps every tenant when the replacement is cut short while %s', async (_, crashing) => {
      const [a, b] = [randomUUID(), randomUUID()];
      await legacyFile(
        [
          [a, 'a'],
          [b, 'b'],
        ],
        '}',
      );
      const store = new SnapshotStore(storeDir, crashing);
      for (const snapshot of (await store.load()).snapshots) store.set(snapshot);
      await expect(store.flush()).rejects.toThrow(/killed/);

      // The restarted replica finds the legacy file (or its backup) and completes the replacement.
      const restarted = new SnapshotStore(storeDir);
      const loaded = await restarted.load();
      expect(names(loaded)).toEqual(['a', 'b']);
      for (const snapshot of loaded.snapshots) restarted.set(snapshot);
      await restarted.flush();
      expect(names(await new SnapshotStore(storeDir).load())).toEqual(['a', 'b']);
      expect(await fs.readdir(dir)).toEqual(['snapshots']);
    });
  });
});

describe('snapshot store of a replica verifying snapshot signatures', () => {
  // A replica that applied an unsigned record before verification was turned on wrote it to its
  // file: served at its (possibly forged, very high) version, it would outrank every signed one.
  it('does not serve a file written without verification, and deletes it at the next write', async () => {
    const [unverified, verified] = [randomUUID(), randomUUID()];
    await writtenStore([[unverified, 'written unverified']]);
    const verifying = new SnapshotStore(storeDir, undefined, { verifiedOnly: true });
    verifying.set(sampleSnapshot(verified, 1n, { name: 'written verified' }));
    await verifying.flush();

    const restarted = new SnapshotStore(storeDir, undefined, { verifiedOnly: true });
    const loaded = await restarted.load();
    expect(names(loaded)).toEqual(['written verified']);
    expect(loaded.skipped).toEqual([
      {
        file: path.join(storeDir, tenantFileName(unverified)),
        reason: expect.stringMatching(/not verified/),
      },
    ]);
    await restarted.flush();
    expect(await fs.readdir(storeDir)).toEqual([tenantFileName(verified)]);
  });

  it('keeps serving what it wrote to a replica that no longer verifies', async () => {
    const tenantId = randomUUID();
    const verifying = new SnapshotStore(storeDir, undefined, { verifiedOnly: true });
    verifying.set(sampleSnapshot(tenantId, 1n, { name: 'written verified' }));
    await verifying.flush();
    expect(names(await new SnapshotStore(storeDir).load())).toEqual(['written verified']);
  });
});
