import { promisify } from 'node:util';
import { gunzipSync, gzip, gzipSync } from 'node:zlib';
import { answeredIssueMessage } from '../domain/credential-headers.js';
import { type TenantSnapshot, tenantSnapshot } from '../domain/gateway-config.js';
import { jsonByteLength } from '../json/json-bytes.js';
import { runToEnd, type SlicedWork } from '../process/event-loop-slices.js';
import { gatewayViewOf } from './gateway-view.js';
import { type SnapshotMessage, SnapshotTooLargeError } from './port.js';
import type { RoutesValidation, RouteValidationCache } from './route-validation-cache.js';

/**
 * The wire format of a snapshot message, shared by every adapter so that size limits and decoding
 * behave identically in memory and in Kafka.
 *
 * - key: the tenant id; value: the snapshot as UTF-8 JSON, or null for a tombstone.
 * - Values over COMPRESS_ABOVE_BYTES are gzipped by us (header `ve-encoding: gzip`), not by the
 *   Kafka producer: the size we check is then exactly the size the broker sees, so a snapshot over
 *   the topic's max.message.bytes is refused here with a SnapshotTooLargeError naming the tenant
 *   instead of failing inside the broker (or, worse, being dropped).
 * - A snapshot whose JSON is over MAX_DECODED_SNAPSHOT_BYTES is refused here too (SnapshotTooLargeError,
 *   `limit: 'decoded'`): gzip could fit it under max.message.bytes, but every gateway would refuse to
 *   inflate it and keep serving the tenant's previous config.
 * - Header `ve-version` carries the version, also on tombstones (whose value is null).
 */

export const COMPRESS_ABOVE_BYTES = 16 * 1024;
/**
 * The most a gzipped record may inflate to. A record on the topic is at most max.message.bytes, but
 * gzip inflates up to ~1000×: without a bound one small record costs every replica that memory.
 * The counted limits (TENANT_MAX_*) do not keep a tenant under it on their own (100 origins × 100
 * targets × 2,048-character URLs alone are 20 MB of JSON): the control plane refuses a command that
 * would take a tenant's snapshot over a share of this and of the message limit (its snapshot budget,
 * TENANT_MAX_SNAPSHOT_PERCENT, measured with `measureSnapshot` below). The encoder refuses a snapshot
 * over it (never published, recorded as the tenant's publish error).
 */
export const MAX_DECODED_SNAPSHOT_BYTES = 32 * 1024 * 1024;
/** Room left under max.message.bytes for the record batch framing, key and headers. */
export const RECORD_OVERHEAD_BYTES = 1024;

export const HEADER_VERSION = 've-version';
export const HEADER_ENCODING = 've-encoding';

export interface EncodedSnapshotRecord {
  key: string;
  value: Buffer | null;
  headers: Record<string, string>;
}

/** The most a snapshot may be: its JSON (what gateways inflate) and its record value (after gzip). */
export interface SnapshotLimits {
  /** Bytes of JSON (MAX_DECODED_SNAPSHOT_BYTES for the bus itself). */
  maxJsonBytes: number;
  /** Bytes of the record value: the JSON, gzipped above COMPRESS_ABOVE_BYTES (max.message.bytes less RECORD_OVERHEAD_BYTES). */
  maxValueBytes: number;
}

/**
 * The limits the encoder applies for a topic's `maxMessageBytes` and the gateways' `maxDecodedBytes`,
 * or `share` of them (the control plane's snapshot budget keeps a tenant below the edge).
 */
export function snapshotLimits(
  maxMessageBytes: number,
  maxDecodedBytes: number = MAX_DECODED_SNAPSHOT_BYTES,
  share = 1,
): SnapshotLimits {
  return {
    maxJsonBytes: Math.floor(maxDecodedBytes * share),
    maxValueBytes: Math.floor((maxMessageBytes - RECORD_OVERHEAD_BYTES) * share),
  };
}

/**
 * The most gzip (zlib's defaults, as the encoder uses them) can make of `bytes` bytes: zlib's
 * deflateBound for the default window and memory level, plus the 18-byte gzip wrapper. Incompressible
 * input grows by about 0.03 % (2,583 bytes for 8 MiB of random bytes), so a JSON whose size plus this
 * growth is within a limit fits without being compressed to find out.
 */
export function gzipBound(bytes: number): number {
  return bytes + Math.floor(bytes / 4096) + Math.floor(bytes / 16384) + Math.floor(bytes / 33554432) + 7 + 18;
}

/** What `measureSnapshot` found. */
export interface SnapshotSize {
  /** Bytes of the snapshot's JSON: exactly what the encoder would send or gzip. */
  jsonBytes: number;
  /**
   * Bytes of the record value: exact when `valueExact`, else an upper bound (gzip was not run because
   * even the bound fits); null when the JSON alone is over `maxJsonBytes` (not compressed at all).
   */
  valueBytes: number | null;
  valueExact: boolean;
  /** Whether the encoder would take it under these limits. */
  fits: boolean;
}

const gzipAsync = promisify(gzip);

/**
 * A snapshot's size as the encoder sees it, against `limits`: its JSON bytes (counted without building
 * the JSON, see snapshotJsonBytes), and its record value — the JSON itself up to COMPRESS_ABOVE_BYTES,
 * else its gzip, which is only run (off the event loop) when gzipBound does not already fit. The
 * encoder refuses exactly the snapshots this finds over its own limits (`snapshotLimits`).
 */
export async function measureSnapshot(
  snapshot: TenantSnapshot,
  limits: SnapshotLimits,
): Promise<SnapshotSize> {
  const sent = gatewayViewOf(snapshot);
  const jsonBytes = snapshotJsonBytes(sent);
  if (jsonBytes > limits.maxJsonBytes) return { jsonBytes, valueBytes: null, valueExact: false, fits: false };
  if (jsonBytes <= COMPRESS_ABOVE_BYTES) {
    return { jsonBytes, valueBytes: jsonBytes, valueExact: true, fits: jsonBytes <= limits.maxValueBytes };
  }
  if (!gzipsToMeasure(jsonBytes, limits)) {
    return { jsonBytes, valueBytes: gzipBound(jsonBytes), valueExact: false, fits: true };
  }
  const value = (await gzipAsync(Buffer.from(JSON.stringify(sent), 'utf8'))).length;
  return { jsonBytes, valueBytes: value, valueExact: true, fits: value <= limits.maxValueBytes };
}

/** Whether `measureSnapshot` gzips a snapshot of `jsonBytes` bytes of JSON to decide it (the costly case). */
export function gzipsToMeasure(jsonBytes: number, limits: SnapshotLimits): boolean {
  return (
    jsonBytes <= limits.maxJsonBytes &&
    jsonBytes > COMPRESS_ABOVE_BYTES &&
    gzipBound(jsonBytes) > limits.maxValueBytes
  );
}

/** `Buffer.byteLength(JSON.stringify(snapshot))`, counted without building the JSON (json-bytes.ts). */
export function snapshotJsonBytes(value: unknown): number {
  return jsonByteLength(value);
}

/** The checks and JSON of a snapshot message before its value is (maybe) compressed. */
function prepare(
  message: SnapshotMessage,
  maxMessageBytes: number,
  maxDecodedBytes: number,
): { headers: Record<string, string>; json: Buffer | null; limits: SnapshotLimits } {
  const headers: Record<string, string> = { [HEADER_VERSION]: message.version.toString() };
  const limits = snapshotLimits(maxMessageBytes, maxDecodedBytes);
  if (message.kind === 'tombstone') return { headers, json: null, limits };
  if (
    message.snapshot.tenant_id !== message.tenantId ||
    message.snapshot.version !== message.version.toString()
  ) {
    throw new Error(
      `snapshot message for tenant ${message.tenantId} v${message.version} carries tenant ` +
        `${message.snapshot.tenant_id} v${message.snapshot.version}`,
    );
  }
  const json = Buffer.from(JSON.stringify(gatewayViewOf(message.snapshot)), 'utf8');
  if (json.length > limits.maxJsonBytes) {
    throw new SnapshotTooLargeError(
      message.tenantId,
      message.version,
      json.length,
      limits.maxJsonBytes,
      'decoded',
    );
  }
  return { headers, json, limits };
}

function finish(
  message: SnapshotMessage,
  headers: Record<string, string>,
  value: Buffer,
  encoding: 'json' | 'gzip',
  limits: SnapshotLimits,
): EncodedSnapshotRecord {
  if (value.length > limits.maxValueBytes) {
    throw new SnapshotTooLargeError(message.tenantId, message.version, value.length, limits.maxValueBytes);
  }
  headers[HEADER_ENCODING] = encoding;
  return { key: message.tenantId, value, headers };
}

/**
 * `maxDecodedBytes` is the gateways' inflate limit (MAX_DECODED_SNAPSHOT_BYTES; tests pass a smaller
 * one, with the same value to decodeSnapshotRecord).
 */
export function encodeSnapshotMessage(
  message: SnapshotMessage,
  maxMessageBytes: number,
  maxDecodedBytes: number = MAX_DECODED_SNAPSHOT_BYTES,
): EncodedSnapshotRecord {
  const { headers, json, limits } = prepare(message, maxMessageBytes, maxDecodedBytes);
  if (json === null) return { key: message.tenantId, value: null, headers };
  if (json.length <= COMPRESS_ABOVE_BYTES) return finish(message, headers, json, 'json', limits);
  return finish(message, headers, gzipSync(json), 'gzip', limits);
}

/**
 * `encodeSnapshotMessage` with the gzip run off the event loop (zlib's thread pool; the same bytes):
 * a large tenant's compression (about 250 ms for 14 MB of JSON) does not stop the process meanwhile.
 */
export async function encodeSnapshotMessageAsync(
  message: SnapshotMessage,
  maxMessageBytes: number,
  maxDecodedBytes: number = MAX_DECODED_SNAPSHOT_BYTES,
): Promise<EncodedSnapshotRecord> {
  const { headers, json, limits } = prepare(message, maxMessageBytes, maxDecodedBytes);
  if (json === null) return { key: message.tenantId, value: null, headers };
  if (json.length <= COMPRESS_ABOVE_BYTES) return finish(message, headers, json, 'json', limits);
  return finish(message, headers, await gzipAsync(json), 'gzip', limits);
}

export type DecodeResult = { ok: true; message: SnapshotMessage } | { ok: false; reason: string };

const DECIMAL = /^\d+$/;

/** A record as read from the topic. */
export interface SnapshotRecord {
  key: string | null;
  value: Buffer | null;
  headers: Record<string, string | undefined>;
}

/**
 * Decodes and validates one record. Never throws: a bad record is reported, not applied. With `routes`
 * (a subscription's), routes unchanged since the tenant's last decoded snapshot are not validated again.
 */
export function decodeSnapshotRecord(
  record: SnapshotRecord,
  maxDecodedBytes: number = MAX_DECODED_SNAPSHOT_BYTES,
  routes?: RouteValidationCache,
): DecodeResult {
  return runToEnd(decodingSnapshotRecord(record, maxDecodedBytes, routes));
}

/**
 * `decodeSnapshotRecord`, a step after the value is parsed and after each route validated (see
 * runInSlices): a subscriber may let other work run while a large tenant's routes are validated.
 */
export function* decodingSnapshotRecord(
  record: SnapshotRecord,
  maxDecodedBytes: number = MAX_DECODED_SNAPSHOT_BYTES,
  routes?: RouteValidationCache,
): SlicedWork<DecodeResult> {
  const tenantId = record.key;
  if (!tenantId) return { ok: false, reason: 'record has no key (tenant id)' };
  const versionText = record.headers[HEADER_VERSION];
  if (versionText === undefined || !DECIMAL.test(versionText)) {
    return { ok: false, reason: `record has no valid ${HEADER_VERSION} header` };
  }
  const version = BigInt(versionText);
  if (record.value === null) {
    routes?.forget(tenantId);
    return { ok: true, message: { kind: 'tombstone', tenantId, version } };
  }

  let json: unknown;
  let bytes = record.value;
  try {
    const encoding = record.headers[HEADER_ENCODING] ?? 'json';
    if (encoding !== 'json' && encoding !== 'gzip')
      return { ok: false, reason: `unknown encoding ${encoding}` };
    if (encoding === 'gzip') {
      try {
        bytes = gunzipSync(record.value, { maxOutputLength: maxDecodedBytes });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
          return { ok: false, reason: `value inflates to larger than ${maxDecodedBytes} bytes` };
        }
        throw error;
      }
    }
    json = JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    return { ok: false, reason: `value is not readable: ${(error as Error).message}` };
  }
  const rawRoutes = routesOf(json);
  yield;
  const parsed =
    routes && rawRoutes
      ? validateWithRoutes(json, yield* routes.validating(tenantId, rawRoutes))
      : validate(json);
  if (!parsed.ok) return parsed;
  const snapshot = parsed.snapshot;
  if (snapshot.tenant_id !== tenantId || snapshot.version !== versionText) {
    return { ok: false, reason: 'snapshot tenant_id/version disagree with the record key/header' };
  }
  if (routes && rawRoutes) routes.remember(tenantId, rawRoutes, snapshot.routes);
  return { ok: true, message: { kind: 'snapshot', tenantId, version, snapshot } };
}

type Validated = { ok: true; snapshot: TenantSnapshot } | { ok: false; reason: string };

/** `message` is quoted in the gateways' logs: a credential's value is never in it (answeredIssueMessage). */
const invalid = (path: readonly PropertyKey[], message: string): Validated => ({
  ok: false,
  reason: `invalid snapshot at ${path.map(String).join('.')}: ${message}`,
});

function validate(json: unknown): Validated {
  const parsed = tenantSnapshot.safeParse(json);
  if (parsed.success) return { ok: true, snapshot: parsed.data };
  const issue = parsed.error.issues[0];
  return issue
    ? invalid(issue.path, answeredIssueMessage(issue))
    : { ok: false, reason: 'invalid snapshot at ?: ' };
}

/** A snapshot's `routes` as parsed, when it is an object with a routes array. */
function routesOf(json: unknown): unknown[] | undefined {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return undefined;
  const routes = (json as { routes?: unknown }).routes;
  return Array.isArray(routes) ? routes : undefined;
}

const SNAPSHOT_FIELDS: readonly string[] = Object.keys(tenantSnapshot.shape);

/**
 * The snapshot validated without its routes, then given the routes validated apart. Its first problem
 * is the one validating it whole would report first: fields are checked in the schema's order (unknown
 * fields last).
 */
function validateWithRoutes(json: unknown, routes: RoutesValidation): Validated {
  const rest = tenantSnapshot.safeParse({ ...(json as object), routes: [] });
  const issue = rest.success ? undefined : rest.error.issues[0];
  const field = typeof issue?.path[0] === 'string' ? SNAPSHOT_FIELDS.indexOf(issue.path[0]) : -1;
  if (issue && (routes.ok || (field >= 0 && field < SNAPSHOT_FIELDS.indexOf('routes')))) {
    return invalid(issue.path, answeredIssueMessage(issue));
  }
  if (!routes.ok) return invalid(['routes', ...routes.path], routes.message);
  if (!rest.success) return { ok: false, reason: 'invalid snapshot at ?: ' };
  rest.data.routes = routes.routes;
  return { ok: true, snapshot: rest.data };
}
