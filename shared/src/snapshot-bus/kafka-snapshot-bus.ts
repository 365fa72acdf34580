import { randomUUID } from 'node:crypto';
import { setImmediate as nextTurn } from 'node:timers/promises';
import {
  type Admin,
  type Consumer,
  type EachBatchPayload,
  type ISocketFactory,
  Kafka,
  type KafkaMessage,
  logLevel,
  Partitioners,
  type Producer,
} from 'kafkajs';
import { CatchUpBacklog } from './catch-up-backlog.js';
import {
  type decodeSnapshotRecord,
  type EncodedSnapshotRecord,
  encodeSnapshotMessageAsync,
} from './codec.js';
import type { KafkaClientSecurity } from './kafka-client-security.js';
import { sendWithSpan } from './kafka-send-span.js';
import {
  deleteConsumerGroup,
  describeSnapshotTopicRetention,
  ensureSnapshotTopic,
  partitionHighWaterMarks,
  type SnapshotTopicSettings,
  snapshotFetchSizes,
} from './kafka-topic.js';
import { headerText, readTopicVersions } from './kafka-topic-versions.js';
import { stopIdleRequestQueueChecks } from './kafkajs-idle-checks.js';
import { decodeNewestPerTenant } from './newest-per-tenant.js';
import type {
  PublishResult,
  SnapshotBus,
  SnapshotHandlers,
  SnapshotMessage,
  SnapshotSubscription,
  TopicRetention,
} from './port.js';
import { createSnapshotVerifier, type SnapshotSigner, type SnapshotVerifier } from './record-signature.js';
import { RouteValidationCache } from './route-validation-cache.js';
import { decodeAndDeliver } from './sliced-delivery.js';

export interface KafkaSnapshotBusOptions extends SnapshotTopicSettings {
  brokers: readonly string[];
  clientId: string;
  /**
   * Prefix of the consumer group ids. Every subscription uses a fresh group (`<prefix>-<uuid>`): each
   * gateway replica needs every tenant, so replicas must not share a group, and a fresh group with
   * `fromBeginning` always reads the whole compacted log.
   */
  groupIdPrefix?: string;
  /** After this long without a successful fetch the subscription reports itself disconnected. */
  stallAfterMs?: number;
  /** Delay between attempts to (re)start a subscription whose broker is unreachable. */
  reconnectDelayMs?: number;
  /**
   * The consumer group's session timeout (default 10 s; the broker's floor is usually 6 s): a
   * subscription cut off from Kafka joins its group again once its old membership has expired.
   */
  sessionTimeoutMs?: number;
  kafkaLogLevel?: logLevel;
  /** The gateways' inflate limit (default MAX_DECODED_SNAPSHOT_BYTES; tests set a smaller one). */
  maxDecodedBytes?: number;
  /** Opens the client's connections to the brokers (default: kafkajs' own; tests route them through a proxy). */
  socketFactory?: ISocketFactory;
  /** TLS and SASL of the connections (kafkaClientSecurity); none: PLAINTEXT, unauthenticated. */
  security?: KafkaClientSecurity;
  /** Signs every record published (the snapshot projector's key, SNAPSHOT_SIGNING_KEY_FILE). */
  signer?: SnapshotSigner;
  /**
   * Subscriptions deliver only records signed by one of its keys (SNAPSHOT_VERIFY_KEYS_FILE); any other
   * is reported to `onUnverifiedMessage` and never decoded, nor kept in place of a tenant's signed one.
   */
  verifier?: SnapshotVerifier;
}

const DEFAULT_STALL_AFTER_MS = 3000;
const DEFAULT_RECONNECT_DELAY_MS = 1000;
const DEFAULT_SESSION_TIMEOUT_MS = 10_000;
const CONNECTION_TIMEOUT_MS = 1000;
const REQUEST_TIMEOUT_MS = 5000;
const RETRY = { initialRetryTime: 100, maxRetryTime: 2000, retries: 5 };
/**
 * How much signature checking (bytes of values, each record counted as at least RECORD_CHECK_BYTES)
 * runs before the event loop gets a turn: about 64 small records (an Ed25519 verification is ~0.15
 * ms), or 1 MiB of values hashed. A topic writer can put thousands of records that all need the
 * check in one fetch, and the replica serves requests on the same loop.
 */
const CHECKS_PER_TURN_BYTES = 1024 * 1024;
const RECORD_CHECK_BYTES = 16 * 1024;

/**
 * How long after a failed publish a request of it may still reach the topic: the failed producer is
 * discarded (the next publish gets a new producer id), but a request it wrote may still be on the wire
 * (an outage longer than the retries, a middlebox holding the bytes) and would then be appended after
 * whatever the new producer sent meanwhile. Twice the longest the client waits for a connection, a
 * request's answer or a retry: past it such a request is taken as lost.
 */
export const KAFKA_LATE_SEND_WINDOW_MS =
  2 * Math.max(CONNECTION_TIMEOUT_MS, REQUEST_TIMEOUT_MS, RETRY.maxRetryTime);

function toRecord(message: KafkaMessage): Parameters<typeof decodeSnapshotRecord>[0] {
  return {
    key: message.key ? message.key.toString('utf8') : null,
    value: message.value,
    headers: headerText(message.headers),
  };
}

/** Splits records so that no single produce request carries a record batch over the topic limit. */
function chunkBySize(records: readonly EncodedSnapshotRecord[], maxBytes: number): EncodedSnapshotRecord[][] {
  const chunks: EncodedSnapshotRecord[][] = [];
  let current: EncodedSnapshotRecord[] = [];
  let size = 0;
  for (const record of records) {
    const recordSize = (record.value?.length ?? 0) + record.key.length + 200;
    if (current.length > 0 && size + recordSize > maxBytes) {
      chunks.push(current);
      current = [];
      size = 0;
    }
    current.push(record);
    size += recordSize;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/**
 * The snapshot bus on a compacted Kafka topic (kafkajs). Producer: idempotent, one request in flight,
 * acks from all in-sync replicas, so a retried send never duplicates or reorders a tenant's messages.
 */
export function createKafkaSnapshotBus(options: KafkaSnapshotBusOptions): SnapshotBus {
  stopIdleRequestQueueChecks();
  const kafka = new Kafka({
    clientId: options.clientId,
    brokers: [...options.brokers],
    logLevel: options.kafkaLogLevel ?? logLevel.NOTHING,
    connectionTimeout: CONNECTION_TIMEOUT_MS,
    requestTimeout: REQUEST_TIMEOUT_MS,
    retry: RETRY,
    ...(options.socketFactory ? { socketFactory: options.socketFactory } : {}),
    ...options.security,
  });
  const stallAfterMs = options.stallAfterMs ?? DEFAULT_STALL_AFTER_MS;
  const reconnectDelayMs = options.reconnectDelayMs ?? DEFAULT_RECONNECT_DELAY_MS;
  let producer: Producer | undefined;
  let producerReady: Promise<Producer> | undefined;
  const subscriptions = new Set<SnapshotSubscription>();
  const ownRecords = options.signer ? createSnapshotVerifier([options.signer.publicKey]) : undefined;

  async function withAdmin<T>(fn: (admin: Admin) => Promise<T>): Promise<T> {
    const admin = kafka.admin();
    await admin.connect();
    try {
      return await fn(admin);
    } finally {
      await admin.disconnect();
    }
  }

  function readyProducer(): Promise<Producer> {
    producerReady ??= (async () => {
      await withAdmin((admin) => ensureSnapshotTopic(admin, options));
      const created = kafka.producer({
        createPartitioner: Partitioners.DefaultPartitioner,
        idempotent: true,
        maxInFlightRequests: 1,
      });
      await created.connect();
      producer = created;
      return created;
    })().catch((error: unknown) => {
      producerReady = undefined;
      throw error;
    });
    return producerReady;
  }

  return {
    lateSendWindowMs: KAFKA_LATE_SEND_WINDOW_MS,
    verifiesSignatures: options.verifier !== undefined,

    async publish(messages: readonly SnapshotMessage[]): Promise<PublishResult> {
      const result: PublishResult = { published: [], failed: [] };
      const records: EncodedSnapshotRecord[] = [];
      const encoded: SnapshotMessage[] = [];
      for (const message of messages) {
        try {
          // gzip off the event loop: a large tenant's compression does not stop the process meanwhile.
          const record = await encodeSnapshotMessageAsync(
            message,
            options.maxMessageBytes,
            options.maxDecodedBytes,
          );
          options.signer?.sign(record);
          records.push(record);
          encoded.push(message);
        } catch (error) {
          result.failed.push({ tenantId: message.tenantId, version: message.version, error: error as Error });
        }
      }
      if (records.length === 0) return result;
      const ready = await readyProducer();
      try {
        for (const chunk of chunkBySize(records, options.maxMessageBytes - 1024)) {
          await sendWithSpan(
            ready,
            {
              topic: options.topic,
              acks: -1,
              messages: chunk.map((record) => ({
                key: record.key,
                value: record.value,
                headers: record.headers,
              })),
            },
            options.clientId,
          );
        }
      } catch (error) {
        // After a broker outage the idempotent producer's id may be stale; start over with a new one.
        producer = undefined;
        producerReady = undefined;
        await ready.disconnect().catch(() => {});
        throw error;
      }
      result.published.push(...encoded);
      return result;
    },

    readNewestVersions(): Promise<Map<string, bigint>> {
      return readTopicVersions(kafka, {
        topic: options.topic,
        maxMessageBytes: options.maxMessageBytes,
        groupIdPrefix: options.groupIdPrefix && `${options.groupIdPrefix}-versions`,
        // A signing projector compares its store with its own records alone: another topic writer's
        // record at a version above the store's head would otherwise stop all publishing.
        verifier: ownRecords,
      });
    },

    readHighWaterMarks(): Promise<Map<number, bigint>> {
      return withAdmin(async (admin) => {
        if (!(await admin.listTopics()).includes(options.topic)) return new Map();
        const offsets = await admin.fetchTopicOffsets(options.topic);
        return new Map(offsets.map((entry) => [entry.partition, BigInt(entry.high)]));
      });
    },

    readTopicRetention(): Promise<TopicRetention> {
      return withAdmin(async (admin) => {
        // A topic gone is the loss watch's; it is created again compacted.
        if (!(await admin.listTopics()).includes(options.topic))
          return { problem: undefined, retentionMs: undefined };
        return describeSnapshotTopicRetention(admin, options.topic);
      });
    },

    async subscribe(handlers: SnapshotHandlers): Promise<SnapshotSubscription> {
      const subscription = startSubscription(kafka, options, handlers, { stallAfterMs, reconnectDelayMs });
      subscriptions.add(subscription);
      return {
        async close() {
          subscriptions.delete(subscription);
          await subscription.close();
        },
      };
    },

    async close(): Promise<void> {
      await Promise.all([...subscriptions].map((subscription) => subscription.close()));
      subscriptions.clear();
      if (producer) await producer.disconnect();
      producer = undefined;
      producerReady = undefined;
    },
  };
}

/**
 * One replica's view of the topic: a fresh consumer group reading from the beginning. Starting needs
 * the broker (connect, high-water marks, join); while it is unreachable we report disconnected and
 * retry in the background. Once running, kafkajs restarts the consumer itself after a crash.
 */
function startSubscription(
  kafka: Kafka,
  options: KafkaSnapshotBusOptions,
  handlers: SnapshotHandlers,
  timing: { stallAfterMs: number; reconnectDelayMs: number },
): SnapshotSubscription {
  const groupId = `${options.groupIdPrefix ?? 've-gateway'}-${randomUUID()}`;
  let consumer: Consumer | undefined;
  let closed = false;
  let connected: boolean | undefined;
  let lastError: string | undefined;
  let lastActivity = Date.now();
  // Records read are being handed over (a catch-up's backlog, a fetched batch): the consumer fetches
  // again only once they are, so the time they take is not Kafka's silence.
  let delivering = 0;
  let retryTimer: NodeJS.Timeout | undefined;
  // Caught-up bookkeeping: next offset to read per partition vs the high-water mark at start.
  let startMarks: Map<number, bigint> | undefined;
  let caughtUp = false;
  const nextOffsets = new Map<number, bigint>();
  const lagByPartition = new Map<number, number>();
  const routes = new RouteValidationCache();
  const backlog = new CatchUpBacklog();
  // Across batches too: kafkajs hands the batches of one fetch (one per partition) over back to back.
  let delivered = false;

  /** Whether the verifier refuses the record (reported to the handlers once, as it is read). */
  const refused = (record: ReturnType<typeof toRecord>): boolean => {
    const refusal = options.verifier?.refusal(record);
    if (refusal) handlers.onUnverifiedMessage?.({ tenantId: record.key, ...refusal });
    return refusal !== undefined;
  };
  // Signature checks since the event loop last had a turn (see CHECKS_PER_TURN_BYTES).
  let checkedBytes = 0;
  /** After a record's check: a turn for the event loop and a heartbeat once enough were checked. */
  const turnAfterCheck = async (record: ReturnType<typeof toRecord>, heartbeat: () => Promise<void>) => {
    checkedBytes += Math.max(RECORD_CHECK_BYTES, record.value?.length ?? 0);
    if (checkedBytes < CHECKS_PER_TURN_BYTES) return;
    checkedBytes = 0;
    await nextTurn();
    await heartbeat();
  };

  let reportedLag = 0;
  const totalLag = (): number => [...lagByPartition.values()].reduce((sum, lag) => sum + lag, 0);

  const setConnected = (value: boolean, error?: string): void => {
    if (error !== undefined) lastError = error;
    if (connected === value) return;
    connected = value;
    handlers.onHealth(
      value ? { connected, lag: totalLag() } : { connected, error: lastError ?? 'unreachable' },
    );
  };

  const whileDelivering = async <T>(deliver: () => Promise<T>): Promise<T> => {
    delivering += 1;
    try {
      return await deliver();
    } finally {
      delivering -= 1;
      lastActivity = Date.now();
    }
  };

  /**
   * Once the high-water marks at start are read: decodes and delivers what the catch-up kept (each
   * tenant once), then says caught up. `keepAlive` heartbeats the group meanwhile, which may take
   * seconds of CPU with many tenants.
   */
  const catchUpIfRead = async (keepAlive: () => Promise<void>): Promise<void> => {
    if (caughtUp || !startMarks) return;
    for (const [partition, mark] of startMarks) {
      if ((nextOffsets.get(partition) ?? 0n) < mark) return;
    }
    caughtUp = true;
    const records = backlog.take();
    if (await whileDelivering(() => deliverBacklog(records, keepAlive))) handlers.onCaughtUp();
  };

  /** Hands each tenant's newest record of the catch-up over; false when the subscription closed meanwhile. */
  const deliverBacklog = async (
    records: ReturnType<CatchUpBacklog['take']>,
    keepAlive: () => Promise<void>,
  ): Promise<boolean> => {
    const decodingAt = decodeNewestPerTenant(records, options.maxDecodedBytes, routes);
    for (const [index, record] of records.entries()) {
      // Requests get the event loop between two tenants' decodes.
      if (delivered) await nextTurn();
      if (closed) return false;
      const delivery = await decodeAndDeliver(decodingAt(index), record.key, handlers, () => !closed);
      if (delivery === 'stopped') return false;
      delivered = delivery === 'delivered';
      // The records are read already: a rebalance meanwhile is for kafkajs to handle afterwards, and
      // the next tenant does not wait for the heartbeat's answer (a broker gone silent would hold
      // each one for a request timeout). kafkajs sends one at a time and shares the one in flight.
      if (delivered) void keepAlive().catch(() => {});
    }
    return true;
  };

  const stallTimer = setInterval(
    () => {
      if (!closed && connected && delivering === 0 && Date.now() - lastActivity > timing.stallAfterMs) {
        setConnected(false, `no fetch from Kafka for ${timing.stallAfterMs} ms`);
      }
    },
    Math.max(100, Math.floor(timing.stallAfterMs / 3)),
  );
  stallTimer.unref();

  /** A fetched batch: kept for the catch-up until caught up, then each tenant's newest delivered. */
  const handleBatch = async ({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload) => {
    const read = (offset: string): void => {
      nextOffsets.set(batch.partition, BigInt(offset) + 1n);
      lastActivity = Date.now();
      resolveOffset(offset);
    };
    let live = 0;
    // Until caught up, records are only kept (see CatchUpBacklog).
    for (; !caughtUp && live < batch.messages.length; live++) {
      if (!isRunning() || isStale() || closed) return;
      const message = batch.messages[live]!;
      const record = toRecord(message);
      // Refused before it is kept: a forged record must not push a tenant's signed ones out of the backlog.
      if (!refused(record)) backlog.add(record);
      read(message.offset);
      await catchUpIfRead(heartbeat);
      if (options.verifier) await turnAfterCheck(record, heartbeat);
    }
    const messages = batch.messages.slice(live);
    const records = messages.map(toRecord);
    const running = () => isRunning() && !isStale() && !closed;
    // Forged records are left out before a tenant's newest is chosen, so they cannot stand in for it.
    let verified: boolean[] | undefined;
    if (options.verifier) {
      verified = [];
      for (const record of records) {
        verified.push(!refused(record));
        await turnAfterCheck(record, heartbeat);
        if (!running()) return;
      }
    }
    const decodingAt = decodeNewestPerTenant(
      verified ? records.filter((_, index) => verified[index]) : records,
      options.maxDecodedBytes,
      routes,
    );
    let decodingIndex = 0;
    for (const [index, message] of messages.entries()) {
      // Requests get the event loop between two tenants' decodes, and within one (hundreds of
      // ms near the snapshot budget): not only after the whole batch.
      if (delivered) await nextTurn();
      if (!running()) return;
      if (verified && !verified[index]) {
        read(message.offset);
        continue;
      }
      const tenantId = message.key?.toString('utf8') ?? null;
      const delivery = await decodeAndDeliver(decodingAt(decodingIndex++), tenantId, handlers, running);
      if (delivery === 'stopped') return;
      delivered = delivery === 'delivered';
      read(message.offset);
      // kafkajs heartbeats only between batches: a batch of large tenants' versions (a republish,
      // what was published while Kafka was unreachable) may outlast the group session, and the
      // group would then hand the whole batch over again. Sent at most once per heartbeatInterval;
      // during a rebalance it commits what was read and throws: the consumer rejoins, reads on.
      if (delivered) await heartbeat();
    }
    lagByPartition.set(
      batch.partition,
      Math.max(0, Number(BigInt(batch.highWatermark) - (nextOffsets.get(batch.partition) ?? 0n))),
    );
    if (connected) {
      const lag = totalLag();
      if (lag !== reportedLag) {
        reportedLag = lag;
        handlers.onHealth({ connected: true, lag });
      }
    } else setConnected(true);
    await heartbeat();
  };

  const start = async (): Promise<void> => {
    if (closed) return;
    const candidate = kafka.consumer({
      groupId,
      maxWaitTimeInMs: 500,
      sessionTimeout: options.sessionTimeoutMs ?? DEFAULT_SESSION_TIMEOUT_MS,
      heartbeatInterval: 1000,
      ...snapshotFetchSizes(options.maxMessageBytes),
      retry: { initialRetryTime: 200, maxRetryTime: 2000, retries: 3, restartOnFailure: async () => true },
    });
    candidate.on(candidate.events.FETCH, () => {
      lastActivity = Date.now();
      setConnected(true);
    });
    candidate.on(candidate.events.CRASH, (event) => {
      setConnected(false, event.payload.error.message);
      // kafkajs restarts the consumer itself after retriable errors; after any other, we do.
      if (!event.payload.restart && !closed && consumer === candidate) {
        consumer = undefined;
        retryTimer = setTimeout(() => void start(), timing.reconnectDelayMs);
      }
    });
    try {
      const admin = kafka.admin();
      await admin.connect();
      try {
        await ensureSnapshotTopic(admin, options);
        if (!startMarks) {
          startMarks = await partitionHighWaterMarks(admin, options.topic);
        }
      } finally {
        await admin.disconnect();
      }
      await candidate.connect();
      await candidate.subscribe({ topic: options.topic, fromBeginning: true });
      if (closed) {
        await candidate.disconnect();
        return;
      }
      consumer = candidate;
      await catchUpIfRead(async () => {});
      await candidate.run({
        autoCommit: true,
        eachBatch: (payload) => whileDelivering(() => handleBatch(payload)),
      });
    } catch (error) {
      setConnected(false, (error as Error).message);
      await candidate.disconnect().catch(() => {});
      if (!closed) retryTimer = setTimeout(() => void start(), timing.reconnectDelayMs);
    }
  };

  void start();

  return {
    async close() {
      closed = true;
      clearInterval(stallTimer);
      if (retryTimer) clearTimeout(retryTimer);
      if (consumer) {
        await consumer.disconnect().catch(() => {});
        await deleteConsumerGroup(kafka, groupId);
      }
    },
  };
}
