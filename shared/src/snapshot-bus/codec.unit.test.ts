import { randomUUID } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  decodeSnapshotRecord,
  encodeSnapshotMessage,
  HEADER_ENCODING,
  HEADER_VERSION,
  MAX_DECODED_SNAPSHOT_BYTES,
} from './codec.js';
import { SnapshotTooLargeError } from './port.js';
import { sampleSnapshot, snapshotMessage } from './testing.js';

const LIMIT = 1024 * 1024;

describe('snapshot wire codec', () => {
  it('sends small snapshots as JSON and large ones gzipped, both decoding to the same snapshot', () => {
    const small = sampleSnapshot(randomUUID(), 3n);
    const large = sampleSnapshot(randomUUID(), 4n, { routes: 300 });
    const smallRecord = encodeSnapshotMessage(snapshotMessage(small), LIMIT);
    const largeRecord = encodeSnapshotMessage(snapshotMessage(large), LIMIT);
    expect(smallRecord.headers[HEADER_ENCODING]).toBe('json');
    expect(largeRecord.headers[HEADER_ENCODING]).toBe('gzip');
    expect(largeRecord.value!.length).toBeLessThan(JSON.stringify(large).length / 4);
    expect(decodeSnapshotRecord(smallRecord)).toEqual({ ok: true, message: snapshotMessage(small) });
    expect(decodeSnapshotRecord(largeRecord)).toEqual({ ok: true, message: snapshotMessage(large) });
  });

  it('encodes a tombstone as a null value with the version in a header', () => {
    const tenantId = randomUUID();
    const record = encodeSnapshotMessage({ kind: 'tombstone', tenantId, version: 12n }, LIMIT);
    expect(record).toEqual({ key: tenantId, value: null, headers: { [HEADER_VERSION]: '12' } });
    expect(decodeSnapshotRecord(record)).toEqual({
      ok: true,
      message: { kind: 'tombstone', tenantId, version: 12n },
    });
  });

  it('refuses a snapshot over the limit after compression, naming the tenant and sizes', () => {
    const snapshot = sampleSnapshot(randomUUID(), 5n, { routes: 400, randomPaths: true });
    expect(() => encodeSnapshotMessage(snapshotMessage(snapshot), 32 * 1024)).toThrow(SnapshotTooLargeError);
    try {
      encodeSnapshotMessage(snapshotMessage(snapshot), 32 * 1024);
    } catch (error) {
      expect(error).toMatchObject({ tenantId: snapshot.tenant_id, version: 5n, maxBytes: 31 * 1024 });
    }
  });

  it('refuses a snapshot that gzip fits under the limit but whose JSON is over what gateways inflate', () => {
    // Regression: such a snapshot was published, and every gateway refused it on decode.
    const snapshot = sampleSnapshot(randomUUID(), 8n, { routes: 300 });
    const json = Buffer.byteLength(JSON.stringify(snapshot));
    const maxDecoded = Math.floor(json / 2);
    const accepted = encodeSnapshotMessage(snapshotMessage(snapshot), LIMIT);
    expect(accepted.value!.length).toBeLessThan(LIMIT);
    expect(decodeSnapshotRecord(accepted, maxDecoded)).toMatchObject({ ok: false, reason: /inflates/ });
    let refused: unknown;
    try {
      encodeSnapshotMessage(snapshotMessage(snapshot), LIMIT, maxDecoded);
    } catch (error) {
      refused = error;
    }
    expect(refused).toBeInstanceOf(SnapshotTooLargeError);
    expect(refused).toMatchObject({
      tenantId: snapshot.tenant_id,
      version: 8n,
      encodedBytes: json,
      maxBytes: maxDecoded,
      limit: 'decoded',
    });
    expect((refused as Error).message).toMatch(/bytes of JSON, over the .*MAX_DECODED_SNAPSHOT_BYTES/);
    expect(decodeSnapshotRecord(encodeSnapshotMessage(snapshotMessage(snapshot), LIMIT, json))).toMatchObject(
      {
        ok: true,
      },
    );
  });

  it('reports, instead of applying, records that are malformed', () => {
    const snapshot = sampleSnapshot(randomUUID(), 6n);
    const good = encodeSnapshotMessage(snapshotMessage(snapshot), LIMIT);
    const cases: Array<[string, Parameters<typeof decodeSnapshotRecord>[0], RegExp]> = [
      ['no key', { ...good, key: null }, /no key/],
      ['no version', { ...good, headers: {} }, /ve-version/],
      ['version disagrees', { ...good, headers: { ...good.headers, [HEADER_VERSION]: '7' } }, /disagree/],
      ['other tenant', { ...good, key: randomUUID() }, /disagree/],
      ['not gzip', { ...good, headers: { ...good.headers, [HEADER_ENCODING]: 'gzip' } }, /not readable/],
      ['bad json', { ...good, value: Buffer.from('{') }, /not readable/],
      [
        'schema',
        { ...good, value: Buffer.from(JSON.stringify({ ...snapshot, routes: 'x' })) },
        /invalid snapshot at routes/,
      ],
    ];
    for (const [name, record, reason] of cases) {
      const result = decodeSnapshotRecord(record);
      expect(result.ok, name).toBe(false);
      if (!result.ok) expect(result.reason, name).toMatch(reason);
    }
  });

  // Regression test: a small gzipped record could inflate without bound on every replica that reads it.
  it('refuses a gzipped record that inflates past MAX_DECODED_SNAPSHOT_BYTES instead of inflating it', () => {
    const snapshot = sampleSnapshot(randomUUID(), 7n);
    // A valid snapshot padded with JSON whitespace: tiny on the wire, huge once inflated.
    const json = JSON.stringify(snapshot);
    const padded = `${json.slice(0, -1)}${' '.repeat(MAX_DECODED_SNAPSHOT_BYTES + 1024)}}`;
    const value = gzipSync(padded);
    expect(value.length).toBeLessThan(256 * 1024);
    const result = decodeSnapshotRecord({
      key: snapshot.tenant_id,
      value,
      headers: { [HEADER_VERSION]: '7', [HEADER_ENCODING]: 'gzip' },
    });
    expect(result).toMatchObject({ ok: false });
    expect(!result.ok && result.reason).toMatch(/larger than/);
  });
});
