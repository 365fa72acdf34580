import {
  foldSnapshotEvent,
  type SnapshotState,
  snapshotTenantOf,
} from '@vantageedge/projections/snapshots/fold';
import type { ControlPlaneEvent, ControlPlaneEventType } from '@vantageedge/shared/domain/events';
import type { TenantSnapshot } from '@vantageedge/shared/domain/gateway-config';
import type { EventMetadata } from '@vantageedge/shared/event-store/port';
import {
  gzipsToMeasure,
  MAX_DECODED_SNAPSHOT_BYTES,
  measureSnapshot,
  type SnapshotSize,
  snapshotJsonBytes,
  snapshotLimits,
} from '@vantageedge/shared/snapshot-bus/codec';
import { gatewayViewOf } from '@vantageedge/shared/snapshot-bus/gateway-view';
import { z } from 'zod';
import { configReadBudgetOf } from '../config-history/config-read-budget.js';
import type { TenantEventSource } from '../config-history/tenant-events.js';
import { tenantFoldAt } from '../config-history/tenant-folds.js';
import { createSnapshotSizeEstimates } from './snapshot-size-estimates.js';
import { limitExceeded } from './tenant-limits.js';

/**
 * What a command does to its tenant's gateway snapshot, checked before its events are appended (by
 * handleCommand, which every command passes through): **the snapshot budget.** A snapshot the snapshot
 * bus cannot take (over SNAPSHOT_MAX_MESSAGE_BYTES after gzip, or over what gateways inflate,
 * MAX_DECODED_SNAPSHOT_BYTES, as JSON) is never published: every replica keeps the tenant's last
 * published config until a later version fits. The counted limits (TENANT_MAX_*) do not prevent that
 * (100 origins × 100 targets of 2,048-character URLs are 20 MB of JSON), so a command whose events would
 * take the tenant's snapshot over TENANT_MAX_SNAPSHOT_PERCENT (75 %) of both limits is refused (422
 * `limit_exceeded`, the field naming what grew), appending nothing. The snapshot after the command is the
 * snapshot projector's own fold (`snapshots/fold`) of the command's events onto the tenant's folded
 * config (the control plane's fold cache, config-history/tenant-folds.ts: one event read after a
 * change), measured with the bus encoder's own rules (`measureSnapshot`: gzip only runs when the JSON
 * plus gzip's worst-case growth is over the limit), or passed on an estimate of its gzip from the
 * tenant's last gzipped snapshot when that fits (snapshot-size-estimates.ts: a refusal is always
 * measured exactly). Each exact gzip is charged to the tenant's whole-config read budget
 * (config-read-budget.ts: the snapshot's JSON bytes, before gzipping), so a tenant whose estimate never
 * fits gets 429 `admin_rate_limited` past it instead of a whole gzip per command. A command that does
 * not make the snapshot's JSON larger is never refused, and deletions (which only take something out)
 * are not even measured, so a tenant over the budget — from events older than the budget — can always
 * get back under it. The margin below the bus's limits absorbs what commands racing each other add
 * together (each is measured against the config before the others) and gzip's few bytes of
 * non-monotony.
 *
 * A host a tenant released is given to another tenant at once, even while the bus refuses the former
 * holder's snapshots: the new claim's position is later than every snapshot of the former holder that
 * still claims the host (the event store reserves a host for one tenant at a time and allocates positions
 * in commit order), so gateways route it to the new owner from the moment they apply its snapshot
 * (holderOf in services/gateway/src/config/gateway-config-store.ts).
 */

export interface SnapshotBudget {
  /** SNAPSHOT_MAX_MESSAGE_BYTES: the topic's max.message.bytes, as the snapshot projector's. */
  maxMessageBytes: number;
  /** What gateways inflate a snapshot to at most (MAX_DECODED_SNAPSHOT_BYTES). */
  maxDecodedBytes: number;
  /** TENANT_MAX_SNAPSHOT_PERCENT: the share of both limits a tenant's snapshot may use. */
  percent: number;
  /**
   * TENANT_MAX_SNAPSHOT_JSON_BYTES: the most JSON a tenant's snapshot may have (when below its share of
   * maxDecodedBytes). Every gateway replica inflates, parses and compiles a tenant's whole snapshot on
   * each of its versions, on the event loop every tenant's requests share; that costs about its JSON
   * bytes, however well they gzip.
   */
  maxJsonBytes: number;
}

/**
 * 2 MiB of JSON: some 60 ms of a replica's event loop per version of a tenant at that size (inflate,
 * parse, compile its routes again after a settings change; ~30 ms/MB measured at load 12), three times
 * a tenant at its counted limits with plain routes (1,000 routes under 400 tenant-wide IP ranges, 10 ×
 * 100 targets: 0.66 MB).
 */
export const DEFAULT_TENANT_SNAPSHOT_JSON_BYTES = 2 * 1024 * 1024;

export const DEFAULT_SNAPSHOT_BUDGET: SnapshotBudget = {
  maxMessageBytes: 8 * 1024 * 1024,
  maxDecodedBytes: MAX_DECODED_SNAPSHOT_BYTES,
  percent: 75,
  maxJsonBytes: DEFAULT_TENANT_SNAPSHOT_JSON_BYTES,
};

/** The control plane's settings of the budget (the bus's own limit is the snapshot bus setting). */
export const snapshotBudgetSettings = {
  /** Percent of the snapshot bus's limits a tenant's gateway snapshot may take (1–100). */
  TENANT_MAX_SNAPSHOT_PERCENT: z.coerce
    .number()
    .int()
    .min(1)
    .max(100)
    .default(DEFAULT_SNAPSHOT_BUDGET.percent),
  /** Bytes of JSON a tenant's gateway snapshot may have (64 KiB to what gateways inflate). */
  TENANT_MAX_SNAPSHOT_JSON_BYTES: z.coerce
    .number()
    .int()
    .min(64 * 1024)
    .max(MAX_DECODED_SNAPSHOT_BYTES)
    .default(DEFAULT_TENANT_SNAPSHOT_JSON_BYTES),
};

export function snapshotBudgetFromSettings(settings: {
  SNAPSHOT_MAX_MESSAGE_BYTES: number;
  TENANT_MAX_SNAPSHOT_PERCENT: number;
  TENANT_MAX_SNAPSHOT_JSON_BYTES: number;
}): SnapshotBudget {
  return {
    maxMessageBytes: settings.SNAPSHOT_MAX_MESSAGE_BYTES,
    maxDecodedBytes: MAX_DECODED_SNAPSHOT_BYTES,
    percent: settings.TENANT_MAX_SNAPSHOT_PERCENT,
    maxJsonBytes: settings.TENANT_MAX_SNAPSHOT_JSON_BYTES,
  };
}

/** An event as handleCommand is about to append it. */
export interface EventToAppend {
  type: string;
  data: unknown;
  metadata: EventMetadata;
}

export interface SnapshotGuard {
  /**
   * Checks `events` (one command's, in order) and runs `append` when they may be appended; throws a
   * DomainError when not (see above). The check and the append of a command that grows a tenant's
   * snapshot run alone for that tenant in this process (TenantQueues), so commands sent at once cannot
   * each pass the budget against the config before the others.
   */
  guard<T>(events: readonly EventToAppend[], append: () => Promise<T>): Promise<T>;
  /** The guard for the steps of one config apply or rollback: the whole of the bus's limits, not the budget. */
  forPlanSteps(): SnapshotGuard;
}

/** Events that only take something out of a snapshot: never measured, never refused. */
const SHRINKING: ReadonlySet<ControlPlaneEventType> = new Set<ControlPlaneEventType>([
  'TenantDeleted',
  'OriginDeleted',
  'RouteDeleted',
  'ApiKeyRevoked',
  'UserDeleted',
  'CustomDomainDeleted',
  'CertificateDeleted',
]);

/** The request field named when an event would take the snapshot over the budget: what grew. */
const GROWING_FIELD: Partial<Record<ControlPlaneEventType, string>> = {
  TenantCreated: 'tenant',
  TenantUpdated: 'tenant',
  OriginCreated: 'origins',
  OriginUpdated: 'origins',
  RouteCreated: 'routes',
  RouteUpdated: 'routes',
  ApiKeyIssued: 'api_keys',
  ApiKeyRotated: 'api_keys',
  ApiKeyQuotaChanged: 'api_keys',
  CertificateUploaded: 'certificates',
  CertificateKeyResealed: 'certificates',
  UserCreated: 'users',
  CustomDomainVerified: 'custom_domains',
};

export function createSnapshotGuard({
  source,
  planStepsSource = source,
  budget = DEFAULT_SNAPSHOT_BUDGET,
}: {
  /** The event store and pool the tenant folds read (their cache is the store's: tenant-folds.ts). */
  source: TenantEventSource;
  /**
   * What the folds of an apply's or rollback's steps read (default: `source`). The change folded the
   * tenant's config before its first step, so each step folds on from the step before it; a step refused
   * for a read bound would leave the change half made.
   */
  planStepsSource?: TenantEventSource;
  budget?: SnapshotBudget;
}): SnapshotGuard {
  const locks = new TenantQueues();
  const command = guardWith(source, budget, budget.percent, locks);
  // The steps of one apply or rollback add before they remove (new origins before the routes that name
  // them, removals last), so a step may pass through a config larger than both ends: each may use the
  // whole of the bus's limits, which still keeps every snapshot publishable.
  const planSteps: SnapshotGuard = {
    guard: guardWith(planStepsSource, budget, 100, locks).guard,
    forPlanSteps: () => planSteps,
  };
  return { guard: command.guard, forPlanSteps: () => planSteps };
}

function guardWith(
  source: TenantEventSource,
  budget: SnapshotBudget,
  percent: number,
  locks: TenantQueues,
): { guard: SnapshotGuard['guard'] } {
  const shared = snapshotLimits(budget.maxMessageBytes, budget.maxDecodedBytes, percent / 100);
  // Plan steps (percent 100) may pass through more than a command may leave, in the same proportion.
  const jsonBound = Math.floor((budget.maxJsonBytes * percent) / budget.percent);
  const limits = { ...shared, maxJsonBytes: Math.min(shared.maxJsonBytes, jsonBound) };
  const estimates = createSnapshotSizeEstimates();

  async function requireWithinBudget(
    tenantId: string,
    field: string,
    before: SnapshotState | undefined,
    folded: TenantSnapshot,
  ): Promise<void> {
    // What the gateways would be sent (no tags), as the encoder measures it.
    const after = gatewayViewOf(folded);
    const jsonBytes = snapshotJsonBytes(after);
    // Not larger than before: allowed, over the budget or not (a way back under it, step by step).
    if (before?.status === 'live' && jsonBytes <= snapshotJsonBytes(gatewayViewOf(before.snapshot))) return;
    if (
      jsonBytes <= limits.maxJsonBytes &&
      (estimates.estimate(tenantId, after) ?? Infinity) <= limits.maxValueBytes
    ) {
      return;
    }
    // An exact gzip costs the process about what a whole-config read of the snapshot does, and a tenant
    // at its budget never fits the estimate: each one is paid from the tenant's config read budget.
    if (gzipsToMeasure(jsonBytes, limits)) configReadBudgetOf(source.store).charge(tenantId, [after]);
    const size = await measureSnapshot(after, limits);
    if (size.valueExact && size.valueBytes !== null) estimates.remember(tenantId, after, size.valueBytes);
    if (size.fits) return;
    throw limitExceeded(field, overBudget(size));
  }

  function overBudget(size: SnapshotSize): string {
    const would =
      size.valueBytes === null
        ? `${size.jsonBytes} bytes of JSON`
        : `${size.valueBytes} bytes after gzip / ${size.jsonBytes} bytes of JSON`;
    return (
      `the tenant's gateway snapshot would be ${would}, over the most a snapshot may be ` +
      `(${limits.maxValueBytes} bytes after gzip, ${limits.maxJsonBytes} bytes of JSON: ` +
      `${percent}% of SNAPSHOT_MAX_MESSAGE_BYTES and of what gateways inflate, ` +
      'TENANT_MAX_SNAPSHOT_PERCENT, and at most TENANT_MAX_SNAPSHOT_JSON_BYTES of JSON, which every ' +
      'gateway replica decodes and compiles per version); remove something first'
    );
  }

  async function check(byTenant: ReadonlyMap<string, ControlPlaneEvent[]>): Promise<void> {
    const head = await source.store.headPosition();
    for (const [tenantId, tenantEvents] of byTenant) {
      const before =
        tenantEvents[0]?.type === 'TenantCreated'
          ? undefined
          : (await tenantFoldAt(source, tenantId, head)).state;
      let after: SnapshotState | undefined = before;
      let field: string | undefined;
      for (const [index, event] of tenantEvents.entries()) {
        try {
          // Positions after the newest event: about the versions the projector will give them.
          after = foldSnapshotEvent(after, { ...event, position: head + BigInt(index + 1) });
        } catch {
          // An event that does not fit the snapshot never reaches it (the projector parks it): nor here.
        }
        field ??= GROWING_FIELD[event.type];
      }
      if (after?.status !== 'live' || field === undefined) continue;
      await requireWithinBudget(tenantId, field, before, after.snapshot);
    }
  }

  return {
    async guard(events, append) {
      const byTenant = new Map<string, ControlPlaneEvent[]>();
      let growing = false;
      for (const event of events) {
        const recorded = { ...event, id: '', stream: '', revision: 0n, position: 0n } as ControlPlaneEvent;
        const tenantId = snapshotTenantOf(recorded);
        if (tenantId === null) continue;
        byTenant.set(tenantId, [...(byTenant.get(tenantId) ?? []), recorded]);
        if (!SHRINKING.has(recorded.type)) growing = true;
      }
      if (!growing) return append();
      return locks.holding([...byTenant.keys()], async () => {
        await check(byTenant);
        return append();
      });
    },
  };
}

/**
 * One growing command at a time per tenant in this process, from its check to the end of its append,
 * so commands sent at once are each measured with the others' events. Commands racing on different
 * control-plane replicas can still each add one command's worth before seeing the others': one step
 * is at most an origin of TENANT_MAX_TARGETS_PER_ORIGIN targets of TENANT_MAX_STRING_LENGTH (≈ 200 KB of
 * JSON) or a route of TENANT_MAX_ROUTE_BYTES, which the budget's margin below the bus's limits (25 % by
 * default, 2 MiB after gzip) absorbs for a dozen replicas racing at once.
 */
const MAX_QUEUE_WAIT_MS = 2_000;

class TenantQueues {
  readonly #tails = new Map<string, Promise<void>>();

  async holding<T>(tenantIds: readonly string[], work: () => Promise<T>): Promise<T> {
    const releases: Array<() => void> = [];
    try {
      for (const tenantId of [...tenantIds].sort()) releases.push(await this.#queue(tenantId));
      return await work();
    } finally {
      for (const release of releases) release();
    }
  }

  /** Waits for the tenant's earlier commands in this process; returns the release of this one. */
  async #queue(tenantId: string): Promise<() => void> {
    const before = this.#tails.get(tenantId) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = before.then(() => mine);
    this.#tails.set(tenantId, tail);
    // A command stuck in its append (waiting on a lock, a connection being recovered) holds the others
    // for at most this long: then they go on, as if sent on another replica.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      before,
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, MAX_QUEUE_WAIT_MS);
      }),
    ]);
    clearTimeout(timer);
    return () => {
      release();
      if (this.#tails.get(tenantId) === tail) this.#tails.delete(tenantId);
    };
  }
}
