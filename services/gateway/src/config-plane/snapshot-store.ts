import { randomUUID } from 'node:crypto';
import type { Dirent, Stats } from 'node:fs';
import * as nodeFs from 'node:fs/promises';
import path from 'node:path';
import { type TenantSnapshot, tenantSnapshot } from '@vantageedge/shared/domain/gateway-config';
import { parseLegacySnapshotFile } from './legacy-snapshot-file.js';

/**
 * The last known config on local disk, for a warm start while Kafka is unreachable: a directory with
 * one file per tenant, so a change rewrites only that tenant's file. Each file is written to a
 * temporary file, flushed to disk and renamed over the old one: a crash leaves the old or the new
 * snapshot, never a torn one. The directory is synced once per flush, after its renames and removals,
 * so a power loss does not bring back a tenant's previous file or a removed tenant's file. Owner-only:
 * tenants' configs may hold origin credentials, and a file another user could plant would be served as
 * a tenant's config. So the files of a directory others may write to are not served, only regular files
 * are read (no link is followed), and each flush makes the directory owner-only again.
 *
 * There is no manifest or stream position: a replica always reads the whole compacted topic from the
 * beginning and the sink keeps the newest version, so a tenant file older than the topic is only a
 * floor served while Kafka is unreachable and is superseded once it is reachable, never taken as current.
 *
 * A path holding the earlier single-file snapshot is read once and replaced by the directory at the
 * first write (staged beside it, then swapped in by two renames; see `replaceLegacyFile`).
 */

/** The part of node:fs/promises the store uses (tests inject failures between steps). */
export type SnapshotStoreFs = Pick<
  typeof nodeFs,
  'mkdir' | 'readdir' | 'readFile' | 'writeFile' | 'rename' | 'rm' | 'stat' | 'open' | 'chmod'
>;

export interface SnapshotStoreOptions {
  /** How many tenant files a load reads at once (default SNAPSHOT_READ_CONCURRENCY). */
  readConcurrency?: number;
  /**
   * The replica applies only signed snapshot records (SNAPSHOT_VERIFY_KEYS_FILE): files are written
   * marked as verified, and a file without the mark (written while the replica did not verify, when
   * a forged record may have been applied) is not served.
   */
  verifiedOnly?: boolean;
}

export interface SkippedSnapshotFile {
  file: string;
  reason: string;
}

export interface LoadedSnapshots {
  snapshots: TenantSnapshot[];
  /**
   * Files (or legacy entries) that were not served: unreadable, invalid, another tenant's, not a regular
   * file, or the whole directory when other users may write to it.
   */
  skipped: SkippedSnapshotFile[];
}

const SUFFIX = '.json';
/** A file written by a replica that verifies signatures holds `{ [VERIFIED]: snapshot }`. */
const VERIFIED = 'verified_snapshot';
const TEMPORARY_SUFFIX = '.tmp';
/**
 * How many tenant files a load reads at once: reads wait on the disk while earlier files are decoded.
 * Each file's text is held until decoded, so at most this many besides the decoded snapshots.
 */
export const SNAPSHOT_READ_CONCURRENCY = 16;
const NOT_VERIFIED = 'not verified when written (the replica did not check snapshot signatures then)';
/** Errors of platforms that cannot sync a directory (opened read-only, or not at all). */
const DIRECTORY_SYNC_UNSUPPORTED = new Set(['EISDIR', 'EINVAL', 'EPERM']);

/** The file name of a tenant: its id in base64url, so no tenant id can name a path outside the store. */
export function tenantFileName(tenantId: string): string {
  return `${Buffer.from(tenantId, 'utf8').toString('base64url')}${SUFFIX}`;
}

function tenantIdOfFileName(name: string): string | undefined {
  if (!name.endsWith(SUFFIX)) return undefined;
  const encoded = name.slice(0, -SUFFIX.length);
  if (!/^[A-Za-z0-9_-]+$/.test(encoded)) return undefined;
  const tenantId = Buffer.from(encoded, 'base64url').toString('utf8');
  return tenantFileName(tenantId) === name ? tenantId : undefined;
}

/** Why the directory's files cannot be trusted to be this replica's, if they cannot. */
function untrustedDirectory(stats: Stats): string | undefined {
  const ownUid = process.getuid?.();
  if (ownUid !== undefined && stats.uid !== ownUid) return 'directory owned by another user';
  if ((stats.mode & 0o022) !== 0) return 'directory writable by other users';
  return undefined;
}

function isMissing(error: unknown): boolean {
  return (error as NodeJS.ErrnoException).code === 'ENOENT';
}

export class SnapshotStore {
  readonly #dir: string;
  readonly #fs: SnapshotStoreFs;
  readonly #readConcurrency: number;
  /** Tenants whose file is behind: the snapshot to write, or null to delete the file. */
  readonly #changed = new Map<string, TenantSnapshot | null>();
  /** The path holds the legacy single file (or only its backup): the next flush replaces it. */
  #legacy = false;
  readonly #verifiedOnly: boolean;

  constructor(dir: string, fs: SnapshotStoreFs = nodeFs, options: SnapshotStoreOptions = {}) {
    this.#dir = dir;
    this.#fs = fs;
    this.#readConcurrency = Math.max(1, options.readConcurrency ?? SNAPSHOT_READ_CONCURRENCY);
    this.#verifiedOnly = options.verifiedOnly === true;
  }

  get #staging(): string {
    return `${this.#dir}.staging`;
  }

  get #legacyBackup(): string {
    return `${this.#dir}.legacy`;
  }

  /** Whether the snapshots loaded came from the legacy single file (they must all be written again). */
  get loadedLegacyFile(): boolean {
    return this.#legacy;
  }

  /** Some tenant's file is behind (flush has something to write). */
  get hasChanges(): boolean {
    return this.#changed.size > 0;
  }

  set(snapshot: TenantSnapshot): void {
    this.#changed.set(snapshot.tenant_id, snapshot);
  }

  delete(tenantId: string): void {
    // Only a tenant id a snapshot may carry has a file (a tombstone's key is not checked upstream).
    if (!tenantSnapshot.shape.tenant_id.safeParse(tenantId).success) return;
    this.#changed.set(tenantId, null);
  }

  /** Reads every tenant's file; what cannot be read or validated is skipped and reported, never thrown. */
  async load(): Promise<LoadedSnapshots> {
    let stats: Stats;
    try {
      stats = await this.#fs.stat(this.#dir);
    } catch (error) {
      if (!isMissing(error)) throw error;
      // A crash between the two renames of a migration leaves only the legacy file's backup.
      return this.#loadLegacy(this.#legacyBackup);
    }
    if (!stats.isDirectory()) return this.#loadLegacy(this.#dir);
    await this.#fs.rm(this.#legacyBackup, { force: true });
    await this.#fs.rm(this.#staging, { recursive: true, force: true });
    const untrusted = untrustedDirectory(stats);
    if (untrusted !== undefined) return this.#distrustDirectory(untrusted);
    return this.#loadDirectory();
  }

  /** Serves none of the files (anyone may have planted them); the next flush deletes the tenants' files. */
  async #distrustDirectory(reason: string): Promise<LoadedSnapshots> {
    for (const name of await this.#fs.readdir(this.#dir)) {
      const tenantId = tenantIdOfFileName(name);
      if (tenantId !== undefined) this.delete(tenantId);
    }
    return { snapshots: [], skipped: [{ file: this.#dir, reason }] };
  }

  async #loadLegacy(file: string): Promise<LoadedSnapshots> {
    let text: string;
    try {
      text = await this.#fs.readFile(file, 'utf8');
    } catch (error) {
      if (isMissing(error)) return { snapshots: [], skipped: [] };
      throw error;
    }
    this.#legacy = true;
    if (this.#verifiedOnly) return { snapshots: [], skipped: [{ file, reason: NOT_VERIFIED }] };
    try {
      const { snapshots, invalid } = parseLegacySnapshotFile(text);
      const skipped = Array.from({ length: invalid }, () => ({ file, reason: 'invalid snapshot entry' }));
      return { snapshots, skipped };
    } catch (error) {
      return { snapshots: [], skipped: [{ file, reason: (error as Error).message }] };
    }
  }

  async #loadDirectory(): Promise<LoadedSnapshots> {
    const entries = await this.#fs.readdir(this.#dir, { withFileTypes: true });
    // In directory order, whatever order the reads end in.
    const results = new Array<TenantSnapshot | SkippedSnapshotFile | undefined>(entries.length);
    let next = 0;
    const readNext = async (): Promise<void> => {
      while (next < entries.length) {
        const index = next++;
        results[index] = await this.#loadEntry(entries[index]!);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.#readConcurrency, entries.length) }, readNext));
    const snapshots: TenantSnapshot[] = [];
    const skipped: SkippedSnapshotFile[] = [];
    for (const result of results) {
      if (result === undefined) continue;
      if ('reason' in result) skipped.push(result);
      else snapshots.push(result);
    }
    return { snapshots, skipped };
  }

  /** A tenant's snapshot, what was skipped, or nothing for a write cut short (deleted). */
  async #loadEntry(entry: Dirent): Promise<TenantSnapshot | SkippedSnapshotFile | undefined> {
    const { name } = entry;
    const file = path.join(this.#dir, name);
    // A link could point anywhere (another directory's files, a device or a pipe that never ends).
    if (!entry.isFile()) return { file, reason: 'not a regular file' };
    if (name.endsWith(TEMPORARY_SUFFIX)) {
      await this.#fs.rm(file, { force: true }); // a write cut short
      return undefined;
    }
    const tenantId = tenantIdOfFileName(name);
    if (tenantId === undefined) return { file, reason: 'not a tenant snapshot file name' };
    const snapshot = await this.#readTenantFile(file, tenantId);
    // Deleted by the next flush unless the topic brings the tenant's snapshot first.
    if ('reason' in snapshot) this.delete(tenantId);
    return snapshot;
  }

  async #readTenantFile(file: string, tenantId: string): Promise<TenantSnapshot | SkippedSnapshotFile> {
    let parsed: unknown;
    try {
      parsed = JSON.parse(await this.#fs.readFile(file, 'utf8'));
    } catch (error) {
      return { file, reason: (error as Error).message };
    }
    const verified = typeof parsed === 'object' && parsed !== null && VERIFIED in parsed;
    if (this.#verifiedOnly && !verified) return { file, reason: NOT_VERIFIED };
    const result = tenantSnapshot.safeParse(
      verified ? (parsed as Record<string, unknown>)[VERIFIED] : parsed,
    );
    if (!result.success) return { file, reason: 'invalid snapshot' };
    if (result.data.tenant_id !== tenantId) return { file, reason: "another tenant's snapshot" };
    return result.data;
  }

  /**
   * Writes the file of each tenant that changed since the last flush and deletes removed tenants'
   * files; other tenants' files are not touched. A tenant that fails, or changes meanwhile, is
   * written by the next flush; one that fails does not keep the others from being written (the
   * first failure is thrown once they were).
   */
  async flush(): Promise<void> {
    const changes = [...this.#changed];
    if (this.#legacy) await this.#replaceLegacyFile(changes);
    else {
      const created = await this.#fs.mkdir(this.#dir, { recursive: true, mode: 0o700 });
      if (created !== undefined) await this.#syncDirectory(path.dirname(this.#dir));
      else await this.#makeOwnerOnly(this.#dir);
      let failure: unknown;
      const written: Array<[string, TenantSnapshot | null]> = [];
      for (const [tenantId, snapshot] of changes) {
        try {
          await this.#writeTenant(this.#dir, tenantId, snapshot);
          written.push([tenantId, snapshot]);
        } catch (error) {
          failure ??= error;
        }
      }
      // One sync for the whole burst; until it succeeds the tenants stay behind (written again).
      if (written.length > 0) await this.#syncDirectory(this.#dir);
      for (const [tenantId, snapshot] of written) this.#written(tenantId, snapshot);
      if (failure !== undefined) throw failure;
    }
  }

  /** A directory that existed before (a volume's mount point, an operator's mkdir) may be open to others. */
  async #makeOwnerOnly(dir: string): Promise<void> {
    if (((await this.#fs.stat(dir)).mode & 0o077) !== 0) await this.#fs.chmod(dir, 0o700);
  }

  /** Makes the directory's renames and removals durable, where the platform can sync a directory. */
  async #syncDirectory(dir: string): Promise<void> {
    let handle: nodeFs.FileHandle | undefined;
    try {
      handle = await this.#fs.open(dir, 'r');
      await handle.sync();
    } catch (error) {
      if (!DIRECTORY_SYNC_UNSUPPORTED.has((error as NodeJS.ErrnoException).code ?? '')) throw error;
    } finally {
      await handle?.close();
    }
  }

  /** A write that ended with the tenant unchanged since leaves nothing for the next flush. */
  #written(tenantId: string, snapshot: TenantSnapshot | null): void {
    if (this.#changed.get(tenantId) === snapshot) this.#changed.delete(tenantId);
  }

  /**
   * Stages every tenant in a directory beside the legacy file, then moves the file to a backup and
   * the directory into its place. At each step a load finds a whole set: the legacy file, its backup,
   * or the directory.
   */
  async #replaceLegacyFile(changes: Array<[string, TenantSnapshot | null]>): Promise<void> {
    await this.#fs.rm(this.#staging, { recursive: true, force: true });
    await this.#fs.mkdir(this.#staging, { recursive: true, mode: 0o700 });
    for (const [tenantId, snapshot] of changes) {
      if (snapshot) await this.#writeTenant(this.#staging, tenantId, snapshot);
    }
    // The staged files' names are on disk before the directory holding them is swapped in.
    await this.#syncDirectory(this.#staging);
    try {
      await this.#fs.rename(this.#dir, this.#legacyBackup);
    } catch (error) {
      if (!isMissing(error)) throw error;
    }
    await this.#fs.rename(this.#staging, this.#dir);
    this.#legacy = false;
    await this.#fs.rm(this.#legacyBackup, { force: true });
    await this.#syncDirectory(path.dirname(this.#dir));
    for (const [tenantId, snapshot] of changes) this.#written(tenantId, snapshot);
  }

  async #writeTenant(dir: string, tenantId: string, snapshot: TenantSnapshot | null): Promise<void> {
    const file = path.join(dir, tenantFileName(tenantId));
    if (!snapshot) {
      await this.#fs.rm(file, { force: true });
      return;
    }
    // Unique, and created afresh: replicas sharing a directory by mistake (each the pid 1 of its
    // container) must not write through one temporary file and rename a mix of both into place.
    const temporary = `${file}.${randomUUID()}${TEMPORARY_SUFFIX}`;
    try {
      // Flushed to disk before the rename: after a power loss the file is the old one or the new one.
      const content = JSON.stringify(this.#verifiedOnly ? { [VERIFIED]: snapshot } : snapshot);
      await this.#fs.writeFile(temporary, content, { mode: 0o600, flag: 'wx', flush: true });
      await this.#fs.rename(temporary, file);
    } catch (error) {
      await this.#fs.rm(temporary, { force: true });
      throw error;
    }
  }
}
