/** A stored response and how long it stays fresh / may be served stale. */
export interface CacheEntry {
  readonly status: number;
  readonly headers: ReadonlyArray<readonly [string, string | string[]]>;
  readonly body: Buffer;
  /** Epoch milliseconds. */
  readonly storedAt: number;
  readonly freshMs: number;
  readonly staleWhileRevalidateMs: number;
  readonly staleIfErrorMs: number;
}

interface EntryMeta {
  s: number;
  h: Array<[string, string | string[]]>;
  t: number;
  f: number;
  w: number;
  e: number;
}

/** [4-byte meta length][meta JSON][body]: binary-safe bodies without base64. */
export function encodeEntry(entry: CacheEntry): Buffer {
  const meta: EntryMeta = {
    s: entry.status,
    h: entry.headers.map(([name, value]) => [name, value]),
    t: entry.storedAt,
    f: entry.freshMs,
    w: entry.staleWhileRevalidateMs,
    e: entry.staleIfErrorMs,
  };
  const metaBytes = Buffer.from(JSON.stringify(meta));
  const length = Buffer.allocUnsafe(4);
  length.writeUInt32BE(metaBytes.length);
  return Buffer.concat([length, metaBytes, entry.body]);
}

export function decodeEntry(buffer: Buffer): CacheEntry | null {
  if (buffer.length < 4) return null;
  const metaLength = buffer.readUInt32BE(0);
  if (buffer.length < 4 + metaLength) return null;
  try {
    const meta = JSON.parse(buffer.subarray(4, 4 + metaLength).toString()) as EntryMeta;
    return {
      status: meta.s,
      headers: meta.h,
      storedAt: meta.t,
      freshMs: meta.f,
      staleWhileRevalidateMs: meta.w,
      staleIfErrorMs: meta.e,
      body: buffer.subarray(4 + metaLength),
    };
  } catch {
    return null;
  }
}

/** Bytes an entry holds in the L1 (body plus a rough header estimate). */
export function entrySize(entry: CacheEntry): number {
  let size = entry.body.length + 64;
  for (const [name, value] of entry.headers)
    size += name.length + (Array.isArray(value) ? value.join('').length : value.length);
  return size;
}
