import { z } from 'zod';
import { hostPortList, LOCAL_DEFAULTS } from '../settings/common-settings.js';
import { SettingsError } from '../settings/load-settings.js';
import { createInMemorySnapshotBus, type InMemorySnapshotLog } from './in-memory-snapshot-bus.js';
import {
  type KafkaSecuritySettings,
  kafkaClientSecurity,
  kafkaSecuritySettings,
  kafkaSecurityWarning,
} from './kafka-client-security.js';
import { createKafkaSnapshotBus } from './kafka-snapshot-bus.js';
import type { SnapshotBus } from './port.js';
import type { SnapshotSigner, SnapshotVerifier } from './record-signature.js';
import { DEFAULT_HEARTBEAT_TTL_SECONDS, DEFAULT_ROLLOUT_PREFIX } from './rollout-registry.js';

/**
 * Kafka bootstrap brokers, `host:port`. kafkajs splits a seed broker at its first colon, so it cannot
 * reach a bracketed IPv6 literal (`[::1]:9092` is host `[`): it would retry for ever instead of the
 * service stopping at start. A host name that resolves to the address works (brokers the cluster
 * advertises by an IPv6 address do too: their host and port come apart in the metadata).
 */
const kafkaBrokerList = hostPortList().superRefine((brokers, ctx) => {
  const literal = brokers.find((broker) => broker.startsWith('['));
  if (literal !== undefined)
    ctx.addIssue({
      code: 'custom',
      message: `cannot name a broker by an IPv6 address (${literal}): the Kafka client cannot reach one; use a host name that resolves to it`,
    });
});

/** Settings of the snapshot bus, shared by the snapshot projector and the gateways (same values!). */
export const snapshotBusSettings = {
  SNAPSHOT_BUS: z.enum(['kafka', 'memory']).default('kafka'),
  KAFKA_BROKERS: kafkaBrokerList.default(LOCAL_DEFAULTS.KAFKA_BROKERS.split(',')),
  SNAPSHOT_TOPIC: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,249}$/, 'must be a Kafka topic name (letters, digits, . _ -)')
    .default('ve.gateway-snapshots.v1'),
  SNAPSHOT_TOPIC_PARTITIONS: z.coerce.number().int().min(1).max(1000).default(6),
  /** Unset: min(3, brokers in the cluster) when the topic is created (kafka-topic.ts). */
  SNAPSHOT_TOPIC_REPLICATION: z.coerce.number().int().min(1).max(10).optional(),
  /** The topic's max.message.bytes; a tenant snapshot over it (after gzip) is refused loudly. */
  SNAPSHOT_MAX_MESSAGE_BYTES: z.coerce
    .number()
    .int()
    .min(64 * 1024)
    .max(64 * 1024 * 1024)
    .default(8 * 1024 * 1024),
  ...kafkaSecuritySettings,
};

/** The snapshot projector's signing key: every record it publishes is signed (record-signature.ts). */
export const snapshotSigningSettings = {
  /** An Ed25519 private key (PEM); unset = records are published unsigned. */
  SNAPSHOT_SIGNING_KEY_FILE: z.string().min(1).optional(),
};

/** The gateways' accepted signing keys: only records signed by one of them are applied. */
export const snapshotVerifySettings = {
  /** One or more Ed25519 public keys (PEM blocks, for a key rotation); unset = records are not verified. */
  SNAPSHOT_VERIFY_KEYS_FILE: z.string().min(1).optional(),
};

/** Gateway-side settings of rollout reporting and warm start (the control plane reads the first two). */
export const rolloutSettings = {
  ROLLOUT_KEY_PREFIX: z.string().default(DEFAULT_ROLLOUT_PREFIX),
  ROLLOUT_HEARTBEAT_TTL_SECONDS: z.coerce
    .number()
    .int()
    .min(3)
    .max(3600)
    .default(DEFAULT_HEARTBEAT_TTL_SECONDS),
};

export const configPlaneSettings = {
  ...rolloutSettings,
  /**
   * Last-known-config store for warm starts while Kafka is unreachable: a directory, one file per
   * tenant (an earlier single file at the path is read once, then replaced); unset = none.
   */
  CONFIG_SNAPSHOT_FILE: z.string().min(1).optional(),
  /** The least time between two writes of the changed tenants' files. */
  CONFIG_SNAPSHOT_FILE_INTERVAL_SECONDS: z.coerce.number().int().min(1).max(3600).default(10),
  /**
   * Percent of a gateway replica's time one tenant's config versions may take to apply, on average
   * (0 = no bound): a version arriving while its tenant is over it waits, and only its newest is applied.
   */
  CONFIG_TENANT_APPLY_SHARE_PERCENT: z.coerce.number().min(0).max(100).default(5),
};

export interface SnapshotBusSettings extends KafkaSecuritySettings {
  SNAPSHOT_BUS: 'kafka' | 'memory';
  KAFKA_BROKERS: string[];
  SNAPSHOT_TOPIC: string;
  SNAPSHOT_TOPIC_PARTITIONS: number;
  SNAPSHOT_TOPIC_REPLICATION?: number | undefined;
  SNAPSHOT_MAX_MESSAGE_BYTES: number;
}

/**
 * For a snapshot projector or gateway in a process of its own: the in-memory bus is one process's alone
 * (make dev runs both in one). Here a projector would record snapshots as published that no gateway
 * reads, and a gateway would serve no tenant, both without an error.
 */
export function assertSnapshotBusSharedAcrossProcesses(
  settings: Pick<SnapshotBusSettings, 'SNAPSHOT_BUS'>,
): void {
  if (settings.SNAPSHOT_BUS === 'memory') {
    throw new SettingsError([
      {
        setting: 'SNAPSHOT_BUS',
        issue:
          'memory is only for make dev (one process): the snapshot projector and the gateways of their own processes share the kafka topic',
      },
    ]);
  }
}

/**
 * The bus the settings describe; with `kafka` its TLS/SASL files are read here, and a bad one throws a
 * SettingsError (service entry points call this inside checkSettingsOrExit). `memory` needs the process-wide log to share (single-process dev
 * mode passes the same log to the projector's and the gateway's bus).
 */
export function snapshotBusFromSettings(
  settings: SnapshotBusSettings,
  {
    clientId,
    groupIdPrefix,
    log,
    signer,
    verifier,
  }: {
    clientId: string;
    groupIdPrefix?: string;
    log?: InMemorySnapshotLog;
    signer?: SnapshotSigner | undefined;
    verifier?: SnapshotVerifier | undefined;
  },
): SnapshotBus {
  if (settings.SNAPSHOT_BUS === 'memory') {
    return createInMemorySnapshotBus({
      maxMessageBytes: settings.SNAPSHOT_MAX_MESSAGE_BYTES,
      ...(log ? { log } : {}),
    });
  }
  return createKafkaSnapshotBus({
    brokers: settings.KAFKA_BROKERS,
    clientId,
    topic: settings.SNAPSHOT_TOPIC,
    partitions: settings.SNAPSHOT_TOPIC_PARTITIONS,
    replicationFactor: settings.SNAPSHOT_TOPIC_REPLICATION,
    maxMessageBytes: settings.SNAPSHOT_MAX_MESSAGE_BYTES,
    security: kafkaClientSecurity(settings),
    ...(groupIdPrefix ? { groupIdPrefix } : {}),
    ...(signer ? { signer } : {}),
    ...(verifier ? { verifier } : {}),
  });
}

/** A line for the service to log at start about how its Kafka connections are secured, if any is due. */
export function snapshotBusSecurityWarning(settings: SnapshotBusSettings): string | undefined {
  return settings.SNAPSHOT_BUS === 'kafka' ? kafkaSecurityWarning(settings) : undefined;
}
