import { isCredentialHeader, REDACTED_VALUE } from '@vantageedge/shared/domain/credential-headers';
import type { HeaderTransform } from '@vantageedge/shared/domain/route-policies';
import { invalid } from './errors.js';

/**
 * Writes of write-only header values (shared/src/domain/credential-headers.ts): every read
 * shows a credential request header's value as `<redacted>`, so a route written back as it was read —
 * a dumped document applied, a route PATCHed with what its GET answered — carries the placeholder.
 * The placeholder as such a header's value means "the value stored for this route and header"
 * (`set` and `add` each, the name compared case-insensitively); with no value stored it is a 400
 * naming the field. As the value of any other header it is an ordinary value.
 */

type Transform = Pick<HeaderTransform, 'set' | 'add'> & Partial<Pick<HeaderTransform, 'remove'>>;

function storedValue(stored: Transform | null | undefined, part: 'set' | 'add', name: string) {
  const lower = name.toLowerCase();
  const entry = Object.entries(stored?.[part] ?? {}).find(
    ([storedName]) => storedName.toLowerCase() === lower,
  );
  return entry?.[1];
}

/**
 * `desired` (the request_headers a write gives) with each placeholder replaced by the value `stored`
 * holds; `field` is where `desired` is in the request (`request_headers`, `routes.3.request_headers`).
 */
export function withStoredCredentials<T extends Transform | null | undefined>(
  desired: T,
  stored: Transform | null | undefined,
  field: string,
): T {
  if (desired === null || desired === undefined) return desired;
  let resolved: T = desired;
  for (const part of ['set', 'add'] as const) {
    const map = desired[part];
    if (!Object.entries(map).some(([name, value]) => value === REDACTED_VALUE && isCredentialHeader(name))) {
      continue;
    }
    const kept: Record<string, string> = {};
    for (const [name, value] of Object.entries(map)) {
      if (value !== REDACTED_VALUE || !isCredentialHeader(name)) {
        kept[name] = value;
        continue;
      }
      const previous = storedValue(stored, part, name);
      if (previous === undefined) {
        throw invalid(
          `${REDACTED_VALUE} keeps the value stored for a credential header, and this route has none for ${name} in ${part}: give the value`,
          `${field}.${part}.${name}`,
          `${REDACTED_VALUE} with no stored value`,
        );
      }
      kept[name] = previous;
    }
    resolved = { ...resolved, [part]: kept };
  }
  return resolved;
}
