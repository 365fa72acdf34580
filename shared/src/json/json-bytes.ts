/** Sizes of deeply frozen values (frozen, and every object under them too): they cannot change. */
const frozenJsonBytes = new WeakMap<object, number>();

/**
 * `Buffer.byteLength(JSON.stringify(value))` (0 where JSON leaves the value out), counted without
 * building the JSON. Deeply frozen objects are counted once (the control plane's cached tenant folds are
 * frozen, and a fold shares every unchanged resource with the one before), so measuring a snapshot after
 * one change costs about the changed resource and the lists holding it, not the whole snapshot. Plain
 * JSON data only (snapshots, events): anything with `toJSON` is counted by stringifying it.
 */
export function jsonByteLength(value: unknown): number {
  return jsonBytes(value) ?? 0;
}

/** undefined where JSON.stringify leaves the value out (undefined, functions, symbols). */
function jsonBytes(value: unknown): number | undefined {
  switch (typeof value) {
    case 'string':
      return Buffer.byteLength(JSON.stringify(value), 'utf8');
    case 'number':
    case 'boolean':
      return JSON.stringify(value).length;
    case 'bigint':
      // As JSON.stringify: a BigInt has no JSON form.
      throw new TypeError('Do not know how to serialize a BigInt');
    case 'object': {
      if (value === null) return 4;
      const known = frozenJsonBytes.get(value);
      if (known !== undefined) return known;
      if (typeof (value as { toJSON?: unknown }).toJSON === 'function') {
        return Buffer.byteLength(JSON.stringify(value) ?? '', 'utf8');
      }
      let bytes = 2;
      let stable = Object.isFrozen(value);
      const count = (item: unknown): number | undefined => {
        if (stable && typeof item === 'object' && item !== null) {
          const size = jsonBytes(item);
          if (!frozenJsonBytes.has(item)) stable = false;
          return size;
        }
        return jsonBytes(item);
      };
      if (Array.isArray(value)) {
        for (let index = 0; index < value.length; index += 1) {
          bytes += (count(value[index]) ?? 4) + (index > 0 ? 1 : 0);
        }
      } else {
        let members = 0;
        for (const key of Object.keys(value)) {
          const size = count((value as Record<string, unknown>)[key]);
          if (size === undefined) continue;
          bytes += Buffer.byteLength(JSON.stringify(key), 'utf8') + 1 + size + (members > 0 ? 1 : 0);
          members += 1;
        }
      }
      if (stable) frozenJsonBytes.set(value, bytes);
      return bytes;
    }
    default:
      return undefined;
  }
}
