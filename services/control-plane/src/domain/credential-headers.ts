import {
  CREDENTIAL_TRANSFORMS,
  type CredentialTransformField,
  REDACTED_VALUE,
} from '@vantageedge/shared/domain/credential-headers';
import type { HeaderTransform } from '@vantageedge/shared/domain/route-policies';
import { invalid } from './errors.js';

/**
 * Writes of write-only values (shared/src/domain/credential-headers.ts): every read shows the value
 * of a credential request header or a credential query parameter as `<redacted>`, so a route written
 * back as it was read — a dumped document applied, a route PATCHed with what its GET answered —
 * carries the placeholder. The placeholder as such a value means "the value stored for this route and
 * name" (`set` and `add` each; a header's name compared case-insensitively, a query parameter's
 * exactly, as the gateway treats them); with no value stored it is a 400 naming the field. As the
 * value of any other header or parameter it is an ordinary value.
 */

type Transform = Pick<HeaderTransform, 'set' | 'add'> & Partial<Pick<HeaderTransform, 'remove'>>;

const WHAT: Record<CredentialTransformField, string> = {
  request_headers: 'credential header',
  query: 'credential query parameter',
};

function storedValue(
  stored: Transform | null | undefined,
  part: 'set' | 'add',
  name: string,
  kind: CredentialTransformField,
) {
  const map = stored?.[part] ?? {};
  if (kind === 'query') return Object.hasOwn(map, name) ? map[name] : undefined;
  const lower = name.toLowerCase();
  const entry = Object.entries(map).find(([storedName]) => storedName.toLowerCase() === lower);
  return entry?.[1];
}

/**
 * `desired` (the request_headers or query transform a write gives; `kind` says which) with each
 * placeholder replaced by the value `stored` holds; `field` is where `desired` is in the request
 * (`request_headers`, `routes.3.query`).
 */
export function withStoredCredentials<T extends Transform | null | undefined>(
  desired: T,
  stored: Transform | null | undefined,
  field: string,
  kind: CredentialTransformField = 'request_headers',
): T {
  if (desired === null || desired === undefined) return desired;
  const isCredential = CREDENTIAL_TRANSFORMS[kind];
  let resolved: T = desired;
  for (const part of ['set', 'add'] as const) {
    const map = desired[part];
    if (!Object.entries(map).some(([name, value]) => value === REDACTED_VALUE && isCredential(name))) {
      continue;
    }
    const kept: Record<string, string> = {};
    for (const [name, value] of Object.entries(map)) {
      if (value !== REDACTED_VALUE || !isCredential(name)) {
        kept[name] = value;
        continue;
      }
      const previous = storedValue(stored, part, name, kind);
      if (previous === undefined) {
        throw invalid(
          `${REDACTED_VALUE} keeps the value stored for a ${WHAT[kind]}, and this route has none for ${name} in ${part}: give the value`,
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

/** A route's fields that may hold write-only values. */
export type RouteCredentialFields = {
  [Field in CredentialTransformField]?: Transform | null | undefined;
};

/**
 * A route write (`desired`: a create or PATCH body, a document's route) with the placeholders of its
 * `request_headers` and `query` resolved against `stored` (the route's state; null for a new route, so
 * any placeholder is a 400). `prefix` is where the route is in the request (`''`, `routes.3`).
 */
export function withStoredRouteCredentials<T extends RouteCredentialFields>(
  desired: T,
  stored: RouteCredentialFields | null | undefined,
  prefix = '',
): T {
  let resolved: T = desired;
  for (const kind of Object.keys(CREDENTIAL_TRANSFORMS) as CredentialTransformField[]) {
    const value = desired[kind];
    if (value === undefined || value === null) continue;
    const kept = withStoredCredentials(
      value,
      stored?.[kind],
      prefix === '' ? kind : `${prefix}.${kind}`,
      kind,
    );
    if (kept !== value) resolved = { ...resolved, [kind]: kept };
  }
  return resolved;
}
