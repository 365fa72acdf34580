import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type TenantSnapshot, tenantSnapshot } from '@vantageedge/shared/domain/gateway-config';

/**
 * The last known config on local disk, for a warm start while Kafka is unreachable. One JSON file
 * `{"written_at", "snapshots": [...]}`, replaced atomically (write to a temporary file, rename).
 * Owner-only: tenants' configs may hold origin credentials (request header transforms).
 */

export async function writeSnapshotFile(file: string, snapshots: Iterable<TenantSnapshot>): Promise<void> {
  await writeSnapshotJson(file, jsonOf(snapshots));
}

function* jsonOf(snapshots: Iterable<TenantSnapshot>): Generator<Buffer> {
  for (const snapshot of snapshots) yield Buffer.from(JSON.stringify(snapshot), 'utf8');
}

/**
 * writeSnapshotFile from each snapshot's JSON, taken lazily and written piece by piece: the file of
 * every tenant is never one string, and requests get the event loop between two pieces.
 */
export async function writeSnapshotJson(file: string, snapshotJson: Iterable<Buffer>): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.tmp`;
  try {
    await pipeline(
      Readable.from(filePieces(snapshotJson), { objectMode: false }),
      // Flushed to disk before the rename: after a power loss the file is the old one or the new one.
      createWriteStream(temporary, { mode: 0o600, flush: true }),
    );
    await rename(temporary, file);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}

const COMMA = Buffer.from(',');

function* filePieces(snapshotJson: Iterable<Buffer>): Generator<Buffer> {
  yield Buffer.from(`{"written_at":${JSON.stringify(new Date().toISOString())},"snapshots":[`);
  let separator = false;
  for (const json of snapshotJson) {
    if (separator) yield COMMA;
    separator = true;
    yield json;
  }
  yield Buffer.from(']}');
}

/**
 * What the snapshot file holds: each tenant's applied snapshot, serialized once per version and only
 * when a file write needs it. One tenant's changes rewrite the file without serializing the others
 * again, however many tenants the replica serves.
 */
export class SnapshotFileContents {
  readonly #byTenant = new Map<string, { snapshot: TenantSnapshot | undefined; json: Buffer | undefined }>();

  set(snapshot: TenantSnapshot): void {
    this.#byTenant.set(snapshot.tenant_id, { snapshot, json: undefined });
  }

  delete(tenantId: string): void {
    this.#byTenant.delete(tenantId);
  }

  /** Each tenant's snapshot as JSON, serialized as it is reached (the latest version applied by then). */
  *json(): Generator<Buffer> {
    for (const entry of this.#byTenant.values()) {
      if (entry.json === undefined) {
        entry.json = Buffer.from(JSON.stringify(entry.snapshot), 'utf8');
        entry.snapshot = undefined;
      }
      yield entry.json;
    }
  }
}

export interface LoadedSnapshotFile {
  snapshots: TenantSnapshot[];
  /** Entries that failed validation (skipped). */
  invalid: number;
}

/** Reads the file; a missing file is an empty result, an unreadable one an error. */
export async function readSnapshotFile(file: string): Promise<LoadedSnapshotFile> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { snapshots: [], invalid: 0 };
    throw error;
  }
  const parsed = JSON.parse(text) as { snapshots?: unknown };
  const entries = Array.isArray(parsed.snapshots) ? parsed.snapshots : [];
  const snapshots: TenantSnapshot[] = [];
  let invalid = 0;
  for (const entry of entries) {
    const result = tenantSnapshot.safeParse(entry);
    if (result.success) snapshots.push(result.data);
    else invalid += 1;
  }
  return { snapshots, invalid };
}
