import type { OutgoingHttpHeader } from 'node:http';

/**
 * One Vary out of several (an answer's own and the fields the gateway varies on): every field once,
 * compared without case (RFC 9110 §12.5.5: field names are case-insensitive), in the order first seen
 * and spelled as first seen. Undefined when none names a field.
 */
export function mergedVary(...values: ReadonlyArray<OutgoingHttpHeader | undefined>): string | undefined {
  const fields: string[] = [];
  const seen = new Set<string>();
  for (const value of values) {
    const text = Array.isArray(value) ? value.join(',') : String(value ?? '');
    for (const raw of text.split(',')) {
      const field = raw.trim();
      if (field === '' || seen.has(field.toLowerCase())) continue;
      seen.add(field.toLowerCase());
      fields.push(field);
    }
  }
  return fields.length === 0 ? undefined : fields.join(', ');
}

/** Whether a Vary value names `field` (lower-case). */
export function varyNames(value: OutgoingHttpHeader | undefined, field: string): boolean {
  const text = Array.isArray(value) ? value.join(',') : String(value ?? '');
  return text.split(',').some((raw) => raw.trim().toLowerCase() === field);
}
