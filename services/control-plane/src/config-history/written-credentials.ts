import {
  CREDENTIAL_TRANSFORMS,
  type CredentialTransformField,
  REDACTED_VALUE,
} from '@vantageedge/shared/domain/credential-headers';
import type { RouteCredentialFields } from '../domain/credential-headers.js';

/**
 * What a plan compares in place of a credential value a document gives outright (not the
 * placeholder). It equals no stored value, so such a value is always planned as written, and the plan
 * answers alike whether it is the stored value or not: plans need only read access, and telling a
 * right guess from a wrong one would give away a write-only value. The placeholder keeps the stored
 * value and plans no change. Never sent anywhere: the steps carry the document's values.
 */
const WRITTEN = '\u0000written credential';

/**
 * `resolved` (a document's route with its placeholders resolved) with each credential value that
 * `written` (the same route as the document gives it) states outright replaced by WRITTEN.
 */
export function withWrittenCredentialsMarked<T extends RouteCredentialFields>(written: T, resolved: T): T {
  let marked: T = resolved;
  for (const kind of Object.keys(CREDENTIAL_TRANSFORMS) as CredentialTransformField[]) {
    const given = written[kind];
    const transform = resolved[kind];
    if (!given || !transform) continue;
    const isCredential = CREDENTIAL_TRANSFORMS[kind];
    let copy = transform;
    for (const part of ['set', 'add'] as const) {
      const stated = Object.entries(given[part] ?? {}).filter(
        ([name, value]) => isCredential(name) && value !== REDACTED_VALUE,
      );
      if (stated.length === 0) continue;
      const map: Record<string, string> = { ...copy[part] };
      for (const [name] of stated) map[name] = WRITTEN;
      copy = { ...copy, [part]: map };
    }
    if (copy !== transform) marked = { ...marked, [kind]: copy };
  }
  return marked;
}
