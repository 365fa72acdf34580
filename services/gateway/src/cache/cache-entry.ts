/** A stored response and how long it stays fresh / may be served stale. */
export interface CacheEntry {
  readonly kind: 'response';
  readonly status: number;
  readonly headers: ReadonlyArray<readonly [string, string | string[]]>;
  readonly body: Buffer;
  /** Epoch milliseconds. */
  readonly storedAt: number;
  readonly freshMs: number;
  readonly staleWhileRevalidateMs: number;
  readonly staleIfErrorMs: number;
  /** Never served stale (must-revalidate, proxy-revalidate, no-cache): no max-stale, no stale windows. */
  readonly mustRevalidate: boolean;
  /** Fresh: a client's reload (no-cache, max-age=0) does not force a revalidation (RFC 8246). */
  readonly immutable: boolean;
  /** The origin's tags (Surrogate-Key / Cache-Tag): purges by tag drop the entry. */
  readonly tags: readonly string[];
  /**
   * The request headers (lower-case names) the origin's Vary named; empty when the response does not
   * vary. Such an entry lives under a variant key, and the URL key holds a VaryMarker.
   */
  readonly varyOn: readonly string[];
}

/** Stored at a URL's key when its responses vary: which request headers select the variant key. */
export interface VaryMarker {
  readonly kind: 'vary';
  readonly varyOn: readonly string[];
}

export type CacheRecord = CacheEntry | VaryMarker;

interface EntryMeta {
  s: number;
  h: Array<[string, string | string[]]>;
  t: number;
  f: number;
  w: number;
  e: number;
  /** must-revalidate (1 when set). */
  r?: 1;
  /** immutable (1 when set). */
  i?: 1;
  /** Tags (absent when none). */
  g?: string[];
  /** Vary names of a response (absent when none). */
  v?: string[];
}

interface MarkerMeta {
  /** Vary names of a marker. */
  m: string[];
}

function frame(meta: EntryMeta | MarkerMeta, body: Buffer | null): Buffer {
  const metaBytes = Buffer.from(JSON.stringify(meta));
  const length = Buffer.allocUnsafe(4);
  length.writeUInt32BE(metaBytes.length);
  return body ? Buffer.concat([length, metaBytes, body]) : Buffer.concat([length, metaBytes]);
}

/** [4-byte meta length][meta JSON][body]: binary-safe bodies without base64. */
export function encodeRecord(record: CacheRecord): Buffer {
  if (record.kind === 'vary') return frame({ m: [...record.varyOn] }, null);
  const meta: EntryMeta = {
    s: record.status,
    h: record.headers.map(([name, value]) => [name, value]),
    t: record.storedAt,
    f: record.freshMs,
    w: record.staleWhileRevalidateMs,
    e: record.staleIfErrorMs,
  };
  if (record.varyOn.length > 0) meta.v = [...record.varyOn];
  if (record.mustRevalidate) meta.r = 1;
  if (record.immutable) meta.i = 1;
  if (record.tags.length > 0) meta.g = [...record.tags];
  return frame(meta, record.body);
}

/** null for anything that is not a record this version can read (treated as absent). */
export function decodeRecord(buffer: Buffer): CacheRecord | null {
  if (buffer.length < 4) return null;
  const metaLength = buffer.readUInt32BE(0);
  if (buffer.length < 4 + metaLength) return null;
  try {
    const meta = JSON.parse(buffer.subarray(4, 4 + metaLength).toString()) as Partial<EntryMeta & MarkerMeta>;
    if (Array.isArray(meta.m)) return { kind: 'vary', varyOn: meta.m };
    if (typeof meta.s !== 'number' || !Array.isArray(meta.h)) return null;
    return {
      kind: 'response',
      status: meta.s,
      headers: meta.h,
      storedAt: meta.t ?? 0,
      freshMs: meta.f ?? 0,
      staleWhileRevalidateMs: meta.w ?? 0,
      staleIfErrorMs: meta.e ?? 0,
      mustRevalidate: meta.r === 1,
      immutable: meta.i === 1,
      tags: Array.isArray(meta.g) ? meta.g : [],
      varyOn: meta.v ?? [],
      body: buffer.subarray(4 + metaLength),
    };
  } catch {
    return null;
  }
}

/** Bytes a record holds in memory (body plus a rough header estimate). */
export function recordSize(record: CacheRecord): number {
  if (record.kind === 'vary') return 64 + record.varyOn.join('').length;
  let size = record.body.length + 64;
  for (const [name, value] of record.headers)
    size += name.length + (Array.isArray(value) ? value.join('').length : value.length);
  return size;
}

/**
 * How long a store keeps an entry from its birth: fresh time plus the longer of its stale windows, and
 * at least `revalidateMs` past its freshness when it has a validator (ETag, Last-Modified) so a stale
 * entry can still be revalidated with a conditional request.
 */
export function retentionMs(entry: CacheEntry, revalidateMs = 0): number {
  const stale = Math.max(entry.staleWhileRevalidateMs, entry.staleIfErrorMs);
  return entry.freshMs + (hasValidator(entry) ? Math.max(stale, revalidateMs) : stale);
}

/** The entry's stored value of a header (lower-case name), the first line when there are several. */
export function entryHeader(entry: CacheEntry, name: string): string | undefined {
  for (const [field, value] of entry.headers)
    if (field === name) return Array.isArray(value) ? value[0] : (value as string);
  return undefined;
}

export function hasValidator(entry: CacheEntry): boolean {
  return entryHeader(entry, 'etag') !== undefined || entryHeader(entry, 'last-modified') !== undefined;
}
