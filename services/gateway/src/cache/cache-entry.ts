import { HOST_BOUND_HEADERS } from '@vantageedge/shared/domain/route-policies';
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

/** What a record's framed metadata holds: everything but the body. */
function recordMeta(record: CacheRecord): EntryMeta | MarkerMeta {
  if (record.kind === 'vary') return { m: [...record.varyOn] };
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
  return meta;
}

/** [4-byte meta length][meta JSON][body]: binary-safe bodies without base64. */
export function encodeRecord(record: CacheRecord): Buffer {
  const head = recordHead(record);
  return record.kind === 'response' ? Buffer.concat([head, record.body]) : head;
}

/**
 * What an encoded record begins with: everything of it but the body (its time stored, freshness,
 * headers with their validators). Two responses with the same head are the same stored response.
 */
export function recordHead(record: CacheRecord): Buffer {
  const metaBytes = Buffer.from(JSON.stringify(recordMeta(record)));
  const length = Buffer.allocUnsafe(4);
  length.writeUInt32BE(metaBytes.length);
  return Buffer.concat([length, metaBytes]);
}

/**
 * encodeRecord(record).length without copying the body: what a stored record takes (and what a
 * store's per-tenant byte bound counts it for, chargedBytes), its tags and header JSON included.
 */
export function encodedRecordBytes(record: CacheRecord): number {
  const body = record.kind === 'response' ? record.body.length : 0;
  return 4 + Buffer.byteLength(JSON.stringify(recordMeta(record))) + body;
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
      headers: withoutHostBoundHeaders(meta.h),
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

/**
 * An origin's Alt-Svc, NEL and Report-To are never relayed (browsers keep them for the host: forwarded-headers.ts);
 * entries stored before that rule may still hold them.
 */
function withoutHostBoundHeaders(headers: EntryMeta['h']): EntryMeta['h'] {
  const bound = ([name]: EntryMeta['h'][number]) => HOST_BOUND_HEADERS.includes(name);
  return headers.some(bound) ? headers.filter((header) => !bound(header)) : headers;
}

/**
 * A quick estimate of a record's size (the bytes a write moves, a Vary marker's charge). What a store's
 * byte bound counts an entry for is encodedRecordBytes; what it costs in the heap, l1EntryBytes.
 */
export function recordSize(record: CacheRecord): number {
  if (record.kind === 'vary') return 64 + record.varyOn.join('').length;
  let size = record.body.length + 64;
  for (const [name, value] of record.headers)
    size += name.length + (Array.isArray(value) ? value.join('').length : value.length);
  return size;
}

/*
 * What one L1 entry costs in the heap beyond its characters and body bytes, measured on Node 24: retained
 * heap + array buffers after GC ÷ entries, 4,000 entries per run (the script: .scratch/l1-measure/measure.ts).
 * An entry with a 1-byte body, two short headers, 3 path tags and ~190-character keys retained ≈2,580
 * bytes; each further header (5-character name, 1-character value) ≈74 bytes; each further character of a
 * header value ≈1.2 bytes. The constants below reproduce those figures within ~10 %: the entry and its
 * slot in the LRU and the path index (objects, arrays, Map/Set entries, the body's Buffer object and its
 * own ArrayBuffer), per header its [name, value] array and string headers. Header values are Latin-1
 * (one byte per character) as Node decodes them.
 */
const L1_ENTRY_OVERHEAD = 1_700;
const L1_HEADER_OVERHEAD = 72;
/** A tag, a Vary name or one line of a multi-line header: its string and its slot in an array. */
const L1_ITEM_OVERHEAD = 48;
const CHAR_BYTES = 1;
/**
 * Its listings in its tenant's keys per route and per tag (keys-by-name.ts), measured on Node 24: a key in
 * a Set shared with many others ≈26 bytes, a name's only key ≈37, each key of a name with two ≈122 (the
 * Set's own cost split in two). A tag is counted at the worst of these: an origin picks its tags.
 */
const L1_ROUTE_LISTING = 32;
const L1_TAG_LISTING = 128;

function itemsBytes(items: readonly string[]): number {
  let size = 0;
  for (const item of items) size += L1_ITEM_OVERHEAD + CHAR_BYTES * item.length;
  return size;
}

/**
 * Bytes an L1 entry holds in the heap: fixed costs per entry and per header, the characters of its keys,
 * headers, tags and Vary names, its listings per route and per tag, and its body (the L1 keeps bodies in
 * their own exact-size buffers: compactBody). L1Cache bounds GATEWAY_CACHE_L1_BYTES by it. recordSize,
 * the stores' count, is unchanged.
 */
export function l1EntryBytes(
  record: CacheRecord,
  key: string,
  pathIndexKey: string,
  urlKey?: string,
): number {
  let size =
    L1_ENTRY_OVERHEAD +
    L1_ROUTE_LISTING +
    CHAR_BYTES * (key.length + pathIndexKey.length + (urlKey?.length ?? 0));
  size += itemsBytes(record.varyOn);
  if (record.kind === 'vary') return size;
  size += record.body.length + itemsBytes(record.tags) + L1_TAG_LISTING * record.tags.length;
  for (const [name, value] of record.headers) {
    size += L1_HEADER_OVERHEAD + CHAR_BYTES * name.length;
    size += Array.isArray(value) ? itemsBytes(value) : CHAR_BYTES * (value as string).length;
  }
  return size;
}

/**
 * The entry with its body in a buffer of its own when it is a view into a larger one (a pooled slice of
 * Buffer.concat, the rest of a Redis reply): such a view keeps the whole backing store alive, which no
 * byte count of the body would show.
 */
export function compactBody(record: CacheRecord): CacheRecord {
  if (record.kind === 'vary') return record;
  const { body } = record;
  if (body.byteOffset === 0 && body.byteLength === body.buffer.byteLength) return record;
  const own = Buffer.allocUnsafeSlow(body.length);
  body.copy(own);
  return { ...record, body: own };
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
