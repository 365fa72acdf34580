import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type TenantSnapshot, tenantSnapshot } from '@vantageedge/shared/domain/gateway-config';

/**
 * The last known config on local disk, for a warm start while Kafka is unreachable. One JSON file
 * `{"written_at", "snapshots": [...]}`, replaced atomically (write to a temporary file, rename).
 * Owner-only: tenants' configs may hold origin credentials (request header transforms).
 */

export async function writeSnapshotFile(file: string, snapshots: Iterable<TenantSnapshot>): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(
    temporary,
    JSON.stringify({ written_at: new Date().toISOString(), snapshots: [...snapshots] }),
    { mode: 0o600 },
  );
  await rename(temporary, file);
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
