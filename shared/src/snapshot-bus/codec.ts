import { gunzipSync, gzipSync } from 'node:zlib';
import { tenantSnapshot } from '../domain/gateway-config.js';
import { type SnapshotMessage, SnapshotTooLargeError } from './port.js';

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
 * Far above a tenant at its limits (TENANT_MAX_*: about 2 MB of JSON, plus up to ~5.6 MB for
 * TENANT_MAX_CERTIFICATES at its maximum of 100 certificates of the largest size). The encoder refuses
 * a snapshot over it (never published, recorded as the tenant's publish error).
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

/**
 * `maxDecodedBytes` is the gateways' inflate limit (MAX_DECODED_SNAPSHOT_BYTES; tests pass a smaller
 * one, with the same value to decodeSnapshotRecord).
 */
export function encodeSnapshotMessage(
  message: SnapshotMessage,
  maxMessageBytes: number,
  maxDecodedBytes: number = MAX_DECODED_SNAPSHOT_BYTES,
): EncodedSnapshotRecord {
  const headers: Record<string, string> = { [HEADER_VERSION]: message.version.toString() };
  if (message.kind === 'tombstone') return { key: message.tenantId, value: null, headers };
  if (
    message.snapshot.tenant_id !== message.tenantId ||
    message.snapshot.version !== message.version.toString()
  ) {
    throw new Error(
      `snapshot message for tenant ${message.tenantId} v${message.version} carries tenant ` +
        `${message.snapshot.tenant_id} v${message.snapshot.version}`,
    );
  }
  let value: Buffer = Buffer.from(JSON.stringify(message.snapshot), 'utf8');
  if (value.length > maxDecodedBytes) {
    throw new SnapshotTooLargeError(
      message.tenantId,
      message.version,
      value.length,
      maxDecodedBytes,
      'decoded',
    );
  }
  let encoding = 'json';
  if (value.length > COMPRESS_ABOVE_BYTES) {
    value = gzipSync(value);
    encoding = 'gzip';
  }
  const limit = maxMessageBytes - RECORD_OVERHEAD_BYTES;
  if (value.length > limit) {
    throw new SnapshotTooLargeError(message.tenantId, message.version, value.length, limit);
  }
  headers[HEADER_ENCODING] = encoding;
  return { key: message.tenantId, value, headers };
}

export type DecodeResult = { ok: true; message: SnapshotMessage } | { ok: false; reason: string };

const DECIMAL = /^\d+$/;

/** Decodes and validates one record. Never throws: a bad record is reported, not applied. */
export function decodeSnapshotRecord(
  record: {
    key: string | null;
    value: Buffer | null;
    headers: Record<string, string | undefined>;
  },
  maxDecodedBytes: number = MAX_DECODED_SNAPSHOT_BYTES,
): DecodeResult {
  const tenantId = record.key;
  if (!tenantId) return { ok: false, reason: 'record has no key (tenant id)' };
  const versionText = record.headers[HEADER_VERSION];
  if (versionText === undefined || !DECIMAL.test(versionText)) {
    return { ok: false, reason: `record has no valid ${HEADER_VERSION} header` };
  }
  const version = BigInt(versionText);
  if (record.value === null) return { ok: true, message: { kind: 'tombstone', tenantId, version } };

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
  const parsed = tenantSnapshot.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return {
      ok: false,
      reason: `invalid snapshot at ${issue?.path.join('.') ?? '?'}: ${issue?.message ?? ''}`,
    };
  }
  if (parsed.data.tenant_id !== tenantId || parsed.data.version !== versionText) {
    return { ok: false, reason: 'snapshot tenant_id/version disagree with the record key/header' };
  }
  return { ok: true, message: { kind: 'snapshot', tenantId, version, snapshot: parsed.data } };
}
