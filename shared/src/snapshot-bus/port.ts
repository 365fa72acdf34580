import type { TenantSnapshot } from '../domain/gateway-config.js';

/**
 * The snapshot bus carries each tenant's compiled gateway config from the snapshot projector to every
 * gateway replica. Semantics follow a compacted Kafka topic keyed by tenant id:
 *
 * - Messages of one tenant are delivered in the order they were published.
 * - Delivery is at least once: a subscriber may see a version twice or (after a republish) an older
 *   version again, so it keeps the newest version per tenant and drops the rest.
 * - Every subscriber reads the whole log from the beginning (every replica needs every tenant); the
 *   log may be compacted to the latest message per tenant at any time.
 * - A deleted tenant is a tombstone (Kafka: a null value, the version in a header).
 *
 * The Kafka adapter (`kafka-snapshot-bus.ts`) and the in-memory adapter (`in-memory-snapshot-bus.ts`)
 * pass the same contract suite (`contract.ts`).
 */

export type SnapshotMessage =
  | { kind: 'snapshot'; tenantId: string; version: bigint; snapshot: TenantSnapshot }
  | { kind: 'tombstone'; tenantId: string; version: bigint };

export interface PublishFailure {
  tenantId: string;
  version: bigint;
  error: Error;
}

/** Which messages of a publish call were acknowledged, and which were refused (e.g. too large). */
export interface PublishResult {
  published: SnapshotMessage[];
  failed: PublishFailure[];
}

/** What a subscriber is told. Handlers run one at a time, in delivery order. */
export interface SnapshotHandlers {
  /**
   * A message, already decoded and validated. A handler that returns a promise (work done in slices
   * of the event loop) gets the next message only once it has settled.
   */
  onMessage(message: SnapshotMessage): void | Promise<void>;
  /**
   * Called once, after every message that was in the log when the subscription started has been
   * delivered (the high-water marks at start). Before this the subscriber's view is incomplete.
   */
  onCaughtUp(): void;
  /** Connection health changes: `connected: false` while the bus is unreachable. */
  onHealth(health: BusHealth): void;
  /** A message that could not be decoded (logged and skipped; never applied). */
  onInvalidMessage?(problem: InvalidSnapshotMessage): void;
  /**
   * A message refused because it is not signed by a key the subscriber accepts (buses given a
   * verifier): not decoded, never applied, and not evidence that its tenant exists.
   */
  onUnverifiedMessage?(problem: UnverifiedSnapshotMessage): void;
}

export interface BusHealth {
  connected: boolean;
  /** Messages published but not yet delivered to this subscriber, when the adapter knows it. */
  lag?: number;
  error?: string;
}

export interface InvalidSnapshotMessage {
  tenantId: string | null;
  reason: string;
}

export interface UnverifiedSnapshotMessage {
  tenantId: string | null;
  reason: 'missing' | 'unknown_key' | 'invalid';
  /** Says why, never quoting the value. */
  detail: string;
}

export interface SnapshotSubscription {
  close(): Promise<void>;
}

export interface SnapshotBus {
  /**
   * How long (ms) after `publish` rejected a message of it may still be appended to the log, after
   * messages published since (Kafka: a discarded producer's request still on the wire). Absent: never.
   */
  readonly lateSendWindowMs?: number;
  /** Subscriptions deliver only records signed by an accepted key (the Kafka bus given a verifier). */
  readonly verifiesSignatures?: boolean;
  /**
   * Publishes and resolves once the bus has acknowledged each message. Messages the bus can never
   * take (too large) are returned in `failed`; connection errors reject the whole call, and the
   * caller republishes later (messages carry their version, so duplicates are harmless).
   */
  publish(messages: readonly SnapshotMessage[]): Promise<PublishResult>;
  /**
   * Each tenant's highest version on the log (snapshots and tombstones alike; empty for a log that is
   * empty or does not exist), read from the records' version headers without decoding them. Reads the
   * whole log, as a subscriber starting does: for the snapshot projector's start, not per publish.
   */
  readNewestVersions?(): Promise<Map<string, bigint>>;
  /**
   * Each partition's next offset (Kafka's high-water mark; empty for a log that does not exist). Cheap
   * (no record is read): a mark below one seen before means the log was deleted or recreated.
   */
  readHighWaterMarks?(): Promise<Map<number, bigint>>;
  /**
   * Whether the log's settings now let it delete a tenant's newest record (Kafka: `delete` in its
   * cleanup.policy with a finite retention), which a start refuses but an operator may set while it runs.
   */
  readTopicRetention?(): Promise<TopicRetention>;
  /**
   * Starts delivering the log from the beginning. Resolves without waiting for the bus to be
   * reachable: an unreachable bus is reported through `onHealth` and retried in the background.
   */
  subscribe(handlers: SnapshotHandlers): Promise<SnapshotSubscription>;
  close(): Promise<void>;
}

/**
 * A snapshot bigger than the bus accepts even after compression (`limit: 'message'`), or bigger as
 * JSON than a gateway inflates a record to (`limit: 'decoded'`, MAX_DECODED_SNAPSHOT_BYTES): every
 * replica would refuse it and keep the tenant's previous config. Never dropped silently.
 */
export class SnapshotTooLargeError extends Error {
  override readonly name = 'SnapshotTooLargeError';
  constructor(
    readonly tenantId: string,
    readonly version: bigint,
    readonly encodedBytes: number,
    readonly maxBytes: number,
    readonly limit: 'message' | 'decoded' = 'message',
  ) {
    super(
      limit === 'message'
        ? `snapshot of tenant ${tenantId} at version ${version} is ${encodedBytes} bytes after gzip, ` +
            `over the ${maxBytes}-byte limit (SNAPSHOT_MAX_MESSAGE_BYTES)`
        : `snapshot of tenant ${tenantId} at version ${version} is ${encodedBytes} bytes of JSON, ` +
            `over the ${maxBytes}-byte limit gateways decode a snapshot to (MAX_DECODED_SNAPSHOT_BYTES): ` +
            'no replica would apply it',
    );
  }
}

/** What a snapshot log's settings do to its records (readTopicRetention). */
export interface TopicRetention {
  /** Why the log may delete a tenant's newest record, naming the settings; undefined when it may not. */
  problem: string | undefined;
  /** How old a record may get before its segment is deleted, when age deletes them. */
  retentionMs: number | undefined;
}
