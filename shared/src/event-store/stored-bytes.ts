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
