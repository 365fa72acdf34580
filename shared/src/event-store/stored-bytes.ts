/**
 * An event's `storedBytes` (port.ts) from its data and metadata: the UTF-8 length of their JSON, as the
 * stores that keep JSON text hold it.
 */
export function storedJsonBytes(data: unknown, metadata: unknown): number {
  return jsonBytes(data) + jsonBytes(metadata);
}

/** The UTF-8 length of the value's JSON; 0 for a value JSON leaves out (undefined). */
export function jsonBytes(value: unknown): number {
  const text: string | undefined = JSON.stringify(value);
  return text === undefined ? 0 : Buffer.byteLength(text);
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
