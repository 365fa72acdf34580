import { type TenantSnapshot, tenantSnapshot } from '@vantageedge/shared/domain/gateway-config';

/**
 * The single-file snapshot earlier versions wrote at CONFIG_SNAPSHOT_FILE:
 * `{"written_at", "snapshots": [...]}`. Only read, once, when a replica finds one at the path.
 */
export interface LegacySnapshotFile {
  snapshots: TenantSnapshot[];
  /** Entries that failed validation (skipped). */
  invalid: number;
}

/** Throws when the text is not JSON (a torn file); skips entries that are not valid snapshots. */
export function parseLegacySnapshotFile(text: string): LegacySnapshotFile {
  const parsed = JSON.parse(text) as { snapshots?: unknown } | null;
  const entries = Array.isArray(parsed?.snapshots) ? parsed.snapshots : [];
  const snapshots: TenantSnapshot[] = [];
  let invalid = 0;
  for (const entry of entries) {
    const result = tenantSnapshot.safeParse(entry);
    if (result.success) snapshots.push(result.data);
    else invalid += 1;
  }
  return { snapshots, invalid };
}
