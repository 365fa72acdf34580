import { readSnapshotsPosition } from './snapshot-state.js';
import type { Queryable } from './snapshot-state-store.js';

/** A tenant the topic holds at a version (an event position) the event store has not reached. */
export interface TenantAheadOnTopic {
  tenantId: string;
  topicVersion: bigint;
  /** The event store's head position. */
  storeHead: bigint;
}

export interface TopicStoreComparison {
  /** Each tenant's highest version on the topic. */
  topicVersions: Map<string, bigint>;
  /**
   * Tenants whose topic version is above the event store's head position: the store went back
   * (restored from an older backup, or another store's topic). Gateways keep a tenant's highest
   * version, so what the store publishes for them below it is dropped as stale. (A store whose
   * `snapshot_state` is merely behind its own log, refolding from position 0, is not ahead.)
   */
  ahead: TenantAheadOnTopic[];
  /**
   * Live tenants acknowledged by the bus that the topic no longer holds at that version (the topic was
   * deleted or its data lost): a gateway starting now would not serve them.
   */
  lost: number;
  /**
   * Tenants on the topic at a version the store has folded past that it has no snapshot of: another
   * deployment's (the same SNAPSHOT_TOPIC given to two deployments on one Kafka cluster). Every gateway
   * of either serves them.
   */
  foreign: string[];
}

/**
 * Compares the snapshot topic with the store. The acknowledged versions are read before the topic and
 * the head position after it, so a publisher running meanwhile (a deploy's overlap) makes neither look
 * wrong: what was acknowledged before the read is on the topic, and what the read finds was folded from
 * events the store then holds. Tombstones acknowledged long ago are not looked for: compaction removes
 * them after the topic's delete.retention.ms.
 */
export async function compareTopicWithStore(
  db: Queryable,
  readTopicVersions: () => Promise<Map<string, bigint>>,
  headPosition: () => Promise<bigint>,
): Promise<TopicStoreComparison> {
  const acknowledged = await db.query<{ tenant_id: string; published_version: string }>(
    `select tenant_id, published_version from snapshot_state
     where status = 'live' and published_version is not null`,
  );
  // A key that is no tenant id is no tenant's config: gateways skip its records.
  const topicVersions = new Map([...(await readTopicVersions())].filter(([tenantId]) => isUuid(tenantId)));
  const storeHead = await headPosition();
  let lost = 0;
  for (const row of acknowledged.rows) {
    if ((topicVersions.get(row.tenant_id) ?? -1n) < BigInt(row.published_version)) lost += 1;
  }
  const foreign = await tenantsNeverFolded(db, topicVersions);
  const ahead: TenantAheadOnTopic[] = [];
  for (const [tenantId, topicVersion] of topicVersions) {
    if (topicVersion > storeHead) ahead.push({ tenantId, topicVersion, storeHead });
  }
  return { topicVersions, ahead, lost, foreign };
}

/**
 * Tenants on the topic at a version at or below the snapshots' position that `snapshot_state` has no
 * row of: every event up to that position is folded, and a tenant's first fold writes its row (kept,
 * as `deleted`, after its deletion), so the store never had them. A refold from position 0 empties the
 * table and its position together: it makes no tenant look foreign.
 */
async function tenantsNeverFolded(db: Queryable, topicVersions: Map<string, bigint>): Promise<string[]> {
  const position = await readSnapshotsPosition(db);
  const folded = [...topicVersions]
    .filter(([, version]) => version <= position)
    .map(([tenantId]) => tenantId);
  if (folded.length === 0) return [];
  const known = await db.query<{ tenant_id: string }>(
    'select tenant_id from snapshot_state where tenant_id = any($1::uuid[])',
    [folded],
  );
  const own = new Set(known.rows.map((row) => row.tenant_id));
  return folded.filter((tenantId) => !own.has(tenantId));
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function isUuid(value: string): boolean {
  return UUID.test(value);
}
