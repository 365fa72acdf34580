import type { AppendOptions, ExpectedRevision, NewEvent, ReadAllOptions, ReadStreamOptions } from './port.js';

/**
 * Input checks shared by every adapter, so that bad input fails the same way everywhere
 * (RangeError/TypeError naming the offending field) and nothing is written.
 */

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function assertAppendInput(stream: string, events: readonly NewEvent[], options: AppendOptions): void {
  assertStreamName(stream);
  if (events.length === 0) throw new RangeError('events: appendToStream needs at least one event');
  events.forEach((event, index) => {
    if (event.id !== undefined && !UUID.test(event.id)) {
      throw new TypeError(`events[${index}].id: must be a uuid, got ${JSON.stringify(event.id)}`);
    }
    if (typeof event.type !== 'string' || event.type === '') {
      throw new TypeError(`events[${index}].type: must be a non-empty string`);
    }
    if (event.data === undefined) throw new TypeError(`events[${index}].data: is required (any JSON value)`);
    if (!Number.isInteger(event.metadata?.schema_version) || event.metadata.schema_version < 1) {
      throw new TypeError(`events[${index}].metadata.schema_version: must be an integer >= 1`);
    }
    assertStorableText(event.data, `events[${index}].data`);
    assertStorableText(event.metadata, `events[${index}].metadata`);
  });
  assertExpectedRevision(options.expectedRevision);
  for (const field of ['claim', 'release'] as const) {
    for (const value of options.reservations?.[field] ?? []) {
      if (typeof value !== 'string' || value === '') {
        throw new TypeError(`reservations.${field}: values must be non-empty strings`);
      }
    }
  }
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

const storable = (text: string): boolean => !text.includes('\u0000') && !LONE_SURROGATE.test(text);

/**
 * PostgreSQL's jsonb holds no U+0000 and no unpaired surrogate (in a string or a key): it refuses the
 * whole append with a driver error that names no field, while the in-memory store would keep it and an
 * event the real store cannot hold would reach the projectors in make dev only. Walked without
 * recursion, as JSON.stringify will see it (toJSON applied).
 */
function assertStorableText(value: unknown, field: string): void {
  const pending: Array<[unknown, string]> = [[value, field]];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    let [item, at] = next;
    if (
      item !== null &&
      typeof item === 'object' &&
      typeof (item as { toJSON?: unknown }).toJSON === 'function'
    )
      item = (item as { toJSON(): unknown }).toJSON();
    if (typeof item === 'string') {
      if (!storable(item)) throw new TypeError(`${at}: must not contain U+0000 or an unpaired surrogate`);
    } else if (Array.isArray(item)) {
      item.forEach((element, i) => {
        pending.push([element, `${at}[${i}]`]);
      });
    } else if (item !== null && typeof item === 'object') {
      for (const [key, child] of Object.entries(item)) {
        if (!storable(key)) throw new TypeError(`${at}: has a key with U+0000 or an unpaired surrogate`);
        pending.push([child, `${at}.${key}`]);
      }
    }
  }
}

export function assertStreamName(stream: string): void {
  if (typeof stream !== 'string' || stream === '') throw new TypeError('stream: must be a non-empty string');
}

function assertExpectedRevision(expected: ExpectedRevision | undefined): void {
  if (
    expected === undefined ||
    expected === 'no_stream' ||
    expected === 'stream_exists' ||
    expected === 'any'
  )
    return;
  if (typeof expected !== 'bigint' || expected < 0n) {
    throw new TypeError(
      `expectedRevision: must be 'no_stream', 'stream_exists', 'any' or a bigint >= 0, got ${String(expected)}`,
    );
  }
}

export function assertReadStreamOptions(options: ReadStreamOptions): void {
  assertMaxCount(options.maxCount);
  assertMaxBytes(options.maxBytes);
  assertTimeout(options.timeoutMs);
  const from = options.fromRevision;
  if (from !== undefined && from !== 'start' && from !== 'end' && (typeof from !== 'bigint' || from < 0n)) {
    throw new TypeError(`fromRevision: must be 'start', 'end' or a bigint >= 0, got ${String(from)}`);
  }
  if (
    options.direction !== undefined &&
    options.direction !== 'forwards' &&
    options.direction !== 'backwards'
  ) {
    throw new TypeError(`direction: must be 'forwards' or 'backwards', got ${String(options.direction)}`);
  }
}

export function assertReadAllOptions(options: ReadAllOptions): void {
  assertMaxCount(options.maxCount);
  assertMaxBytes(options.maxBytes);
  assertTimeout(options.timeoutMs);
  if (
    options.fromPosition !== undefined &&
    (typeof options.fromPosition !== 'bigint' || options.fromPosition < 0n)
  ) {
    throw new TypeError(`fromPosition: must be a bigint >= 0, got ${String(options.fromPosition)}`);
  }
}

function assertTimeout(timeoutMs: number | undefined): void {
  if (timeoutMs !== undefined && (!Number.isInteger(timeoutMs) || timeoutMs < 1)) {
    throw new RangeError(`timeoutMs: must be an integer >= 1, got ${String(timeoutMs)}`);
  }
}

function assertMaxCount(maxCount: number | undefined): void {
  if (maxCount !== undefined && (!Number.isInteger(maxCount) || maxCount < 1)) {
    throw new RangeError(`maxCount: must be an integer >= 1, got ${String(maxCount)}`);
  }
}

function assertMaxBytes(maxBytes: number | undefined): void {
  if (maxBytes !== undefined && (!Number.isSafeInteger(maxBytes) || maxBytes < 1)) {
    throw new RangeError(`maxBytes: must be an integer >= 1, got ${String(maxBytes)}`);
  }
}

/** Whether a stream at `actual` satisfies `expected`; the rule every adapter applies. */
export function revisionMatches(expected: ExpectedRevision, actual: bigint | 'no_stream'): boolean {
  if (expected === 'any') return true;
  if (expected === 'no_stream') return actual === 'no_stream';
  if (expected === 'stream_exists') return actual !== 'no_stream';
  return actual === expected;
}

/**
 * Event data and metadata are stored as JSON by every real adapter (jsonb, EventStoreDB JSON events);
 * the in-memory adapter round-trips them the same way so unit tests see what production sees.
 */
export function jsonRoundTrip<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}
