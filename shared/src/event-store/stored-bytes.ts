import { jsonByteLength } from '../json/json-bytes.js';

/**
 * An event's `storedBytes` (port.ts) from its data and metadata: the UTF-8 length of their JSON, as the
 * stores that keep JSON text hold it.
 */
export function storedJsonBytes(data: unknown, metadata: unknown): number {
  return jsonByteLength(data) + jsonByteLength(metadata);
}

/**
 * The first of `events` up to the one that brings their `storedBytes` to `maxBytes` (all of them
 * without `maxBytes`): what a read given ReadStreamOptions/ReadAllOptions `maxBytes` returns.
 */
export function upToStoredBytes<Event extends { storedBytes: number }>(
  events: readonly Event[],
  maxBytes: number | undefined,
): Event[] {
  if (maxBytes === undefined) return [...events];
  let bytes = 0;
  let count = 0;
  while (count < events.length && bytes < maxBytes) bytes += events[count++]?.storedBytes ?? 0;
  return events.slice(0, count);
}
