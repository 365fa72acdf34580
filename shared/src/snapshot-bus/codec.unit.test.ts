import { randomBytes, randomUUID } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { originConfig, routeConfig, tenantSnapshot } from '../domain/gateway-config.js';
import {
  COMPRESS_ABOVE_BYTES,
  decodeSnapshotRecord,
  encodeSnapshotMessage,
  encodeSnapshotMessageAsync,
  gzipBound,
  HEADER_ENCODING,
  HEADER_VERSION,
  MAX_DECODED_SNAPSHOT_BYTES,
  measureSnapshot,
  snapshotJsonBytes,
  snapshotLimits,
} from './codec.js';
import { SnapshotTooLargeError } from './port.js';
import { RouteValidationCache } from './route-validation-cache.js';
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

  // Regression test: the gateways log a refused record's reason, which quoted the ${…} a route's
  // credential header or query parameter named, the credential itself when it was one.
  it("reports a route credential's refusal without quoting the credential", () => {
    const secret = 'credential-0123456789';
    const snapshot = sampleSnapshot(randomUUID(), 8n, { routes: 2 });
    for (const [field, name] of [
      ['request_headers', 'authorization'],
      ['query', 'api_key'],
    ] as const) {
      const routes = snapshot.routes.map((route, index) =>
        index === 1
          ? { ...route, [field]: { set: { [name]: `Bearer \${${secret}}` }, add: {}, remove: [] } }
          : route,
      );
      const record = encodeSnapshotMessage(snapshotMessage({ ...snapshot, routes }), LIMIT);
      for (const cache of [undefined, new RouteValidationCache()]) {
        const result = decodeSnapshotRecord(record, MAX_DECODED_SNAPSHOT_BYTES, cache);
        expect(result.ok, field).toBe(false);
        if (result.ok) continue;
        expect(result.reason).toMatch(
          new RegExp(`^invalid snapshot at routes\\.1\\.${field}\\.set\\.${name}: names a`),
        );
        expect(result.reason).not.toContain(secret);
      }
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

/** Deep-freezes a value as the control plane's fold cache does with the states it keeps. */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const item of Object.values(value)) deepFreeze(item);
    Object.freeze(value);
  }
  return value;
}

describe('snapshot size, as the encoder sees it', () => {
  it('counts exactly the bytes of JSON.stringify, escapes, non-ASCII and omitted members included', () => {
    const values: unknown[] = [
      sampleSnapshot(randomUUID(), 9n, { routes: 40, randomPaths: true }),
      {
        a: 'é€😀',
        b: 'quote " backslash \\ newline \n tab \t nul \u0000 \u001f \u2028',
        c: [1, -2.5, 1e21, 0.1],
      },
      { skip: undefined, fn: () => 1, keep: null, nested: { deep: [undefined, true, false, {}, []] } },
      { 'kéy "quoted"': 'v', '\u2028': 1, 10: 'numeric key', n: Number.NaN, inf: Number.POSITIVE_INFINITY },
      [],
      'plain',
      { date: new Date(0) },
    ];
    for (const value of values) {
      expect(snapshotJsonBytes(value)).toBe(Buffer.byteLength(JSON.stringify(value)));
    }
  });

  it('counts a frozen snapshot once and a changed copy correctly (shared unchanged parts)', () => {
    const before = deepFreeze(sampleSnapshot(randomUUID(), 10n, { routes: 50, randomPaths: true }));
    expect(snapshotJsonBytes(before)).toBe(Buffer.byteLength(JSON.stringify(before)));
    // A fold step: a new top object and list, the unchanged routes shared with the frozen one.
    const route = { ...before.routes[0]!, id: randomUUID(), path_pattern: '/ünïcode/"x"' };
    const after = { ...before, version: '11', routes: [...before.routes, route] };
    expect(snapshotJsonBytes(after)).toBe(Buffer.byteLength(JSON.stringify(after)));
    // Not frozen, so not remembered: a mutation is counted.
    route.path_pattern = '/changed';
    expect(snapshotJsonBytes(after)).toBe(Buffer.byteLength(JSON.stringify(after)));
  });

  it('bounds what gzip makes of incompressible data (the claim that lets the budget skip gzip)', () => {
    for (const size of [COMPRESS_ABOVE_BYTES + 1, 100_000, 1_048_576, 8 * 1_048_576]) {
      const data = randomBytes(size);
      const gzipped = gzipSync(data).length;
      expect(gzipped).toBeGreaterThan(size);
      expect(gzipped).toBeLessThanOrEqual(gzipBound(size));
      expect(gzipBound(size) - size).toBeLessThan(size / 1000 + 64);
    }
  });

  it('measures what the encoder refuses, against the same limits, gzipping only when the bound does not fit', async () => {
    const poor = sampleSnapshot(randomUUID(), 12n, { routes: 400, randomPaths: true });
    const json = Buffer.byteLength(JSON.stringify(poor));
    const gzipped = gzipSync(Buffer.from(JSON.stringify(poor))).length;
    // Roomy: no gzip needed, the bound is reported.
    const roomy = await measureSnapshot(poor, snapshotLimits(json * 2));
    expect(roomy).toEqual({ jsonBytes: json, valueBytes: gzipBound(json), valueExact: false, fits: true });
    // Tight: gzip is run, and the answer agrees with the encoder on both sides of the limit.
    for (const maxMessageBytes of [gzipped + 1024, gzipped + 1023]) {
      const measured = await measureSnapshot(poor, snapshotLimits(maxMessageBytes));
      expect(measured).toEqual({
        jsonBytes: json,
        valueBytes: gzipped,
        valueExact: true,
        fits: maxMessageBytes === gzipped + 1024,
      });
      const encode = () => encodeSnapshotMessage(snapshotMessage(poor), maxMessageBytes);
      if (measured.fits) expect(encode().value!.length).toBe(gzipped);
      else expect(encode).toThrow(SnapshotTooLargeError);
    }
    // Over the JSON limit: not compressed at all.
    expect(await measureSnapshot(poor, snapshotLimits(LIMIT, json - 1))).toEqual({
      jsonBytes: json,
      valueBytes: null,
      valueExact: false,
      fits: false,
    });
    // A share of the limits (the control plane's budget).
    expect(snapshotLimits(8 * 1024 * 1024, MAX_DECODED_SNAPSHOT_BYTES, 0.75)).toEqual({
      maxValueBytes: Math.floor((8 * 1024 * 1024 - 1024) * 0.75),
      maxJsonBytes: 24 * 1024 * 1024,
    });
  });

  it('sends gateways no tags: the record, its size and what replicas decode are those of the untagged snapshot', async () => {
    const untagged = sampleSnapshot(randomUUID(), 15n, { routes: 3 });
    const label = 'team-payments-owned-by-someone';
    const tagged = {
      ...untagged,
      origins: untagged.origins.map((origin) => ({ ...origin, tags: [label] })),
      routes: untagged.routes.map((route) => ({ ...route, tags: [label, 'prod'] })),
    };
    const record = encodeSnapshotMessage(snapshotMessage(tagged), LIMIT);
    expect(record.value!.toString('utf8')).not.toContain(label);
    expect(record).toEqual(encodeSnapshotMessage(snapshotMessage(untagged), LIMIT));
    expect(decodeSnapshotRecord(record)).toEqual({ ok: true, message: snapshotMessage(untagged) });
    expect(await measureSnapshot(tagged, snapshotLimits(LIMIT))).toEqual(
      await measureSnapshot(untagged, snapshotLimits(LIMIT)),
    );
  });

  it('sends gateways routes and origins as the release before tags did (no tags member at all): a replica not yet upgraded reads them, and they cost the budget nothing', async () => {
    const snapshot = sampleSnapshot(randomUUID(), 16n, { routes: 3 });
    const beforeTags = {
      ...snapshot,
      origins: snapshot.origins.map(({ tags: _tags, ...origin }) => origin),
      routes: snapshot.routes.map(({ tags: _tags, ...route }) => route),
    };
    // The strict snapshot schema of the release before tags: a member it does not know refuses the snapshot.
    const previousRelease = tenantSnapshot.extend({
      origins: z.array(originConfig.omit({ tags: true })),
      routes: z.array(routeConfig.omit({ tags: true })),
    });
    for (const tags of [[], ['team-payments']]) {
      const tagged = {
        ...beforeTags,
        origins: beforeTags.origins.map((origin) => ({ ...origin, tags })),
        routes: beforeTags.routes.map((route) => ({ ...route, tags })),
      };
      const record = encodeSnapshotMessage(snapshotMessage(tagged), LIMIT);
      const sent: unknown = JSON.parse(record.value!.toString('utf8'));
      expect(previousRelease.safeParse(sent).error?.issues ?? [], `tags ${JSON.stringify(tags)}`).toEqual([]);
      expect(record).toEqual(encodeSnapshotMessage(snapshotMessage(beforeTags), LIMIT));
      expect(await measureSnapshot(tagged, snapshotLimits(LIMIT))).toEqual(
        await measureSnapshot(beforeTags, snapshotLimits(LIMIT)),
      );
    }
  });

  it('encodes the same record off the event loop as on it', async () => {
    for (const snapshot of [
      sampleSnapshot(randomUUID(), 13n),
      sampleSnapshot(randomUUID(), 14n, { routes: 300, randomPaths: true }),
    ]) {
      const message = snapshotMessage(snapshot);
      expect(await encodeSnapshotMessageAsync(message, LIMIT)).toEqual(encodeSnapshotMessage(message, LIMIT));
    }
    const tombstone = { kind: 'tombstone', tenantId: randomUUID(), version: 3n } as const;
    expect(await encodeSnapshotMessageAsync(tombstone, LIMIT)).toEqual(
      encodeSnapshotMessage(tombstone, LIMIT),
    );
    const big = snapshotMessage(sampleSnapshot(randomUUID(), 15n, { routes: 400, randomPaths: true }));
    await expect(encodeSnapshotMessageAsync(big, 32 * 1024)).rejects.toThrow(SnapshotTooLargeError);
  });
});
