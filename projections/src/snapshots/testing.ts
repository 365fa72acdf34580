import { randomUUID } from 'node:crypto';
import type {
  ControlPlaneEvent,
  ControlPlaneEventMap,
  ControlPlaneEventType,
  ControlPlaneNewEvent,
  OriginState,
  RouteState,
} from '@vantageedge/shared/domain/events';
import { NO_ROUTE_POLICIES } from '@vantageedge/shared/domain/route-policies';
import { storedJsonBytes } from '@vantageedge/shared/event-store/stored-bytes';
import type { SnapshotRecord } from '@vantageedge/shared/snapshot-bus/codec';
import {
  createKafkaSnapshotBus,
  type KafkaSnapshotBusOptions,
} from '@vantageedge/shared/snapshot-bus/kafka-snapshot-bus';
import type { SnapshotBus } from '@vantageedge/shared/snapshot-bus/port';
import { eventually } from '@vantageedge/shared/snapshot-bus/testing';
import { TEST_INFRA } from '@vantageedge/shared/testing/infrastructure';
import { createTestKafka, uniqueGroupId } from '@vantageedge/shared/testing/kafka';
import { logLevel } from 'kafkajs';
import type pg from 'pg';

/** Builders of control-plane events for snapshot tests. */

export function newEvent<Type extends ControlPlaneEventType>(
  type: Type,
  data: ControlPlaneEventMap[Type],
  occurredAt = new Date().toISOString(),
): ControlPlaneNewEvent {
  const tenantId = (data as { tenant_id?: string }).tenant_id ?? null;
  return {
    type,
    data,
    metadata: {
      actor: 'user_test',
      tenant_id: tenantId,
      correlation_id: randomUUID(),
      causation_id: null,
      occurred_at: occurredAt,
      schema_version: 1,
    },
  } as ControlPlaneNewEvent;
}

let nextPosition = 1n;
/** A recorded event with an increasing position, for pure fold tests. */
export function recorded(event: ControlPlaneNewEvent, position = nextPosition++): ControlPlaneEvent {
  return {
    ...event,
    id: randomUUID(),
    stream: 'test',
    revision: 0n,
    position,
    storedBytes: storedJsonBytes(event.data, event.metadata),
  } as ControlPlaneEvent;
}

export function tenantCreated(tenantId: string, name = 'Acme') {
  return newEvent('TenantCreated', {
    tenant_id: tenantId,
    name,
    subdomain: `acme-${tenantId.slice(0, 6)}`,
    clerk_org_id: null,
    settings: {
      rate_limit: null,
      oidc: null,
      authorized_parties: null,
      service_accounts: [],
      ip_rules: null,
    },
  });
}

export function originState(tenantId: string, originId = randomUUID()): OriginState {
  return {
    origin_id: originId,
    tenant_id: tenantId,
    name: 'main',
    targets: [{ url: 'http://127.0.0.1:9/', weight: 1 }],
    health_check_path: '/health',
    timeout_seconds: 30,
    load_balancing: { algorithm: 'round_robin', hash_on: 'client_ip' },
    health_check: {
      active: {
        enabled: true,
        interval_seconds: 10,
        timeout_seconds: 2,
        healthy_threshold: 2,
        unhealthy_threshold: 3,
      },
      passive: { enabled: true, unhealthy_threshold: 5 },
    },
    circuit_breaker: {
      enabled: true,
      consecutive_failures: 5,
      error_rate_threshold: 0.5,
      window_requests: 20,
      open_seconds: 30,
      half_open_requests: 1,
    },
    tags: [],
  };
}

export function routeState(
  tenantId: string,
  originId: string,
  overrides: Partial<RouteState> = {},
): RouteState {
  return {
    route_id: randomUUID(),
    tenant_id: tenantId,
    origin_id: originId,
    path_pattern: '/api/*',
    websocket_token: 'header',
    methods: [],
    priority: 0,
    auth_mode: 'public',
    required_scopes: [],
    require_tenant_org: true,
    allow_any_authenticated_user: false,
    strip_prefix: null,
    rate_limit: null,
    cache_policy: null,
    ...NO_ROUTE_POLICIES,
    tags: [],
    ...overrides,
  };
}

export function apiKeyIssued(tenantId: string, apiKeyId = randomUUID(), expiresAt: string | null = null) {
  return newEvent('ApiKeyIssued', {
    api_key_id: apiKeyId,
    tenant_id: tenantId,
    name: 'ci',
    key_hash: 'a'.repeat(64),
    key_prefix: 've_live_abcd',
    scopes: ['read'],
    expires_at: expiresAt,
  });
}

/** A tenant's row of the snapshot projection's state: its newest version, and what the bus took or refused. */
export async function snapshotStateOf(pool: pg.Pool, tenantId: string) {
  const { rows } = await pool.query<{
    version: string;
    published_version: string | null;
    failed_version: string | null;
  }>('select version, published_version, failed_version from snapshot_state where tenant_id = $1', [
    tenantId,
  ]);
  return rows[0];
}

/** Waits (up to 20 s) until the projector has published, or the bus refused, the tenant's snapshot at `position`. */
export async function snapshotSettled(pool: pg.Pool, tenantId: string, position: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const row = await snapshotStateOf(pool, tenantId);
    if (
      row &&
      BigInt(row.version) >= BigInt(position) &&
      (row.published_version === row.version || row.failed_version === row.version)
    ) {
      return;
    }
    if (Date.now() > deadline) throw new Error(`snapshot of ${tenantId} not settled at ${position}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Every record of a one-partition topic, in the order written, as a subscriber decodes them. */
export async function topicRecords(topic: string): Promise<SnapshotRecord[]> {
  const kafka = createTestKafka({ level: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const [partition] = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const end = BigInt(partition?.high ?? 0);
  const records: SnapshotRecord[] = [];
  if (end === 0n) return records;
  const groupId = uniqueGroupId('topic-records');
  // Disconnecting waits for the fetch in flight: once the topic is read, that is a long poll of
  // maxWaitTimeInMs (kafkajs's default 5 s) with nothing left to come.
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let read = 0n;
  await consumer.run({
    eachMessage: async ({ message }) => {
      const headers: Record<string, string | undefined> = {};
      for (const [name, value] of Object.entries(message.headers ?? {})) headers[name] = value?.toString();
      records.push({ key: message.key?.toString('utf8') ?? null, value: message.value, headers });
      read = BigInt(message.offset) + 1n;
    },
  });
  await eventually('the whole topic is read', () => read >= end);
  await consumer.disconnect();
  await admin.connect();
  await admin.deleteGroups([groupId]).catch(() => {});
  await admin.disconnect();
  return records;
}

/**
 * A Kafka snapshot bus on `topic` of the local broker, created with one partition and 1 MiB records
 * when it is missing; `purpose` names its client. The caller closes it.
 */
export function onePartitionTestBus(
  topic: string,
  purpose: string,
  options: Pick<KafkaSnapshotBusOptions, 'socketFactory'> = {},
): SnapshotBus {
  return createKafkaSnapshotBus({
    brokers: TEST_INFRA.kafkaBrokers,
    clientId: `ve-test-${purpose}-${randomUUID()}`,
    topic,
    partitions: 1,
    replicationFactor: 1,
    maxMessageBytes: 1024 * 1024,
    ...options,
  });
}
