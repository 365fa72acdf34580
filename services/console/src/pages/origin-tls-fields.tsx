import type { OriginTls } from '@vantageedge/shared/domain/gateway-config';
import { withHiddenCharactersShown } from '@vantageedge/shared/domain/visible-text';
import type { Certificate } from '../api/resources.js';
import { Field } from '../ui/components.js';
import type { FieldIssues } from '../validation.js';

/** An origin's TLS settings as the API defaults them (origins listed before they existed have none). */
export const DEFAULT_ORIGIN_TLS: OriginTls = {
  verify: true,
  ca_certificates: null,
  server_name: null,
  verify_depth: null,
  client_certificate_id: null,
};

/** How an origin's https targets are verified and what it presents, in a few words (its table cell). */
export function originTlsSummary(tls: OriginTls, certificates: readonly Certificate[]): string {
  const parts = [
    tls.verify ? 'verified' : 'NOT verified',
    ...(tls.verify && tls.ca_certificates !== null ? ["against the origin's own CAs"] : []),
    ...(tls.server_name !== null ? [`for ${tls.server_name}`] : []),
    ...(tls.verify && tls.verify_depth !== null ? [`at most ${tls.verify_depth} intermediate CAs`] : []),
  ];
  if (tls.client_certificate_id !== null) {
    const certificate = certificates.find((candidate) => candidate.id === tls.client_certificate_id);
    parts.push(
      `client certificate ${certificate ? withHiddenCharactersShown(certificate.subject) : tls.client_certificate_id}`,
    );
  }
  return parts.join(', ');
}

/**
 * The `tls` fields of an origin's form: verification, the CA bundle trusted instead of the gateways'
 * store, the server name, the verification depth, and the client certificate presented (one of the tenant's certificates).
 * Issues are named as the API names them (`tls.ca_certificates`, …).
 */
export function OriginTlsFields({
  value,
  onChange,
  certificates,
  issues,
}: {
  value: OriginTls;
  onChange: (tls: OriginTls) => void;
  certificates: readonly Certificate[];
  issues: FieldIssues;
}) {
  const set = (changes: Partial<OriginTls>) => onChange({ ...value, ...changes });
  const orNull = (text: string) => (text.trim() === '' ? null : text);
  // Not an integer from 0 to 100: the request schema names the field, as the API would.
  const numberOrNull = (text: string) => (text.trim() === '' ? null : Number(text));
  return (
    <fieldset class="origin-tls">
      <legend>HTTPS targets</legend>
      <Field
        label="Verify the origin's certificate"
        field="tls.verify"
        issues={issues}
        hint="off: encrypted, but anyone on the path can read it"
      >
        <input
          name="tls.verify"
          type="checkbox"
          checked={value.verify}
          onChange={(e) => set({ verify: e.currentTarget.checked })}
        />
      </Field>
      <Field
        label="CA certificates (PEM)"
        field="tls.ca_certificates"
        issues={issues}
        hint="trusted instead of the gateways' store for this origin; empty: the gateways' store"
      >
        <textarea
          name="tls.ca_certificates"
          rows={4}
          value={value.ca_certificates ?? ''}
          placeholder="-----BEGIN CERTIFICATE-----"
          onInput={(e) => set({ ca_certificates: orNull(e.currentTarget.value) })}
        />
      </Field>
      <Field
        label="Server name"
        field="tls.server_name"
        issues={issues}
        hint="the SNI and the name verified; empty: the target URL's host"
      >
        <input
          name="tls.server_name"
          value={value.server_name ?? ''}
          onInput={(e) => set({ server_name: orNull(e.currentTarget.value) })}
        />
      </Field>
      <Field
        label="Verification depth"
        field="tls.verify_depth"
        issues={issues}
        hint="the most intermediate CAs between the origin's certificate and the trusted CA; empty: no limit"
      >
        <input
          name="tls.verify_depth"
          type="number"
          min={0}
          max={100}
          value={value.verify_depth ?? ''}
          onInput={(e) => set({ verify_depth: numberOrNull(e.currentTarget.value) })}
        />
      </Field>
      <Field
        label="Client certificate"
        field="tls.client_certificate_id"
        issues={issues}
        hint="presented when the origin asks for one (mTLS)"
      >
        <select
          name="tls.client_certificate_id"
          value={value.client_certificate_id ?? ''}
          onChange={(e) => set({ client_certificate_id: orNull(e.currentTarget.value) })}
        >
          <option value="">none</option>
          {value.client_certificate_id !== null &&
            !certificates.some((certificate) => certificate.id === value.client_certificate_id) && (
              <option value={value.client_certificate_id}>{value.client_certificate_id}</option>
            )}
          {certificates.map((certificate) => (
            <option key={certificate.id} value={certificate.id}>
              {withHiddenCharactersShown(certificate.subject)} (until {certificate.not_after.slice(0, 10)})
            </option>
          ))}
        </select>
      </Field>
    </fieldset>
  );
}
