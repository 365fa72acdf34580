import {
  CREDENTIAL_TRANSFORMS,
  isCredentialTransformField,
  REDACTED_VALUE,
  redactedCredentials,
  redactedMap,
  redactedTransform,
} from '@vantageedge/shared/domain/credential-headers';
import type { FieldChange } from './config-diff.js';
import type { TenantConfig } from './tenant-config.js';

export { REDACTED_VALUE };

/**
 * What leaves the control plane of a config: the values of the routes' credential request headers and
 * credential query parameters are write-only (README "Route policies"), shown as REDACTED_VALUE, and
 * the origins' target URLs and the OIDC jwks_url show no credentials earlier releases recorded in them
 * (urlWithoutCredentials). Config commands (plan, apply, rollback) work on the real config; only what
 * is answered goes through here.
 */

/** The config with its credential values redacted (for GET …/config and …/document). */
export function redactedConfig(config: TenantConfig): TenantConfig {
  return {
    ...config,
    tenant: redactedCredentials(config.tenant),
    origins: config.origins.map((origin) => redactedCredentials(origin)),
    routes: config.routes.map((route) => redactedCredentials(route)),
  };
}

/** The last member of a dotted field path (`settings.oidc.jwks_url` → `jwks_url`). */
const lastMember = (field: string) => field.slice(field.lastIndexOf('.') + 1);

/**
 * A field change of a diff or a plan: a credential header's or query parameter's value shows as
 * REDACTED_VALUE on both sides.
 */
function redactedFieldChange(change: FieldChange): FieldChange {
  const { field } = change;
  const hide = (value: unknown) => (value === null || value === undefined ? value : REDACTED_VALUE);
  if (isCredentialTransformField(field)) {
    return {
      ...change,
      from: redactedTransform(field, change.from),
      to: redactedTransform(field, change.to),
    };
  }
  for (const [transform, isCredential] of Object.entries(CREDENTIAL_TRANSFORMS)) {
    for (const part of ['set', 'add']) {
      const prefix = `${transform}.${part}`;
      if (field === prefix) {
        return {
          ...change,
          from: redactedMap(change.from, isCredential),
          to: redactedMap(change.to, isCredential),
        };
      }
      // Header and parameter names may hold dots: the name is everything after the prefix.
      if (field.startsWith(`${prefix}.`) && isCredential(field.slice(prefix.length + 1))) {
        return { ...change, from: hide(change.from), to: hide(change.to) };
      }
    }
  }
  const member = lastMember(field);
  return {
    ...change,
    from: redactedCredentials(change.from, member),
    to: redactedCredentials(change.to, member),
  };
}

/**
 * The changes of a diff or a plan as answered: the resources before and after, and the changed fields,
 * without credential values (a change of one still shows, as `<redacted>` → `<redacted>`).
 */
export function redactedChanges<Change extends { fields: FieldChange[]; before: unknown; after: unknown }>(
  changes: readonly Change[],
): Change[] {
  return changes.map((change) => ({
    ...change,
    fields: change.fields.map(redactedFieldChange),
    before: redactedCredentials(change.before),
    after: redactedCredentials(change.after),
  }));
}
