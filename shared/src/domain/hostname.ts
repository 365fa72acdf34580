import { domainToASCII, domainToUnicode } from 'node:url';

/**
 * Host names a tenant may claim as custom domains, and the rules the control plane and the gateways
 * share about them. A custom domain is stored in its canonical form: lower-case ASCII (IDNA / punycode
 * for internationalised names), no port, no wildcard, no trailing dot.
 */

export const MAX_HOSTNAME_LENGTH = 253;
const MAX_LABEL_LENGTH = 63;
/** An LDH label: letters, digits, inner hyphens (punycode labels start with xn--). */
const LABEL = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/;
/** Characters that make a URL or a host:port out of a name; domainToASCII would silently cut at some. */
const NOT_IN_A_HOST_NAME = /[\s/\\:@?#[\]%*,;"'<>|`{}^]/u;

export type HostnameCheck = { ok: true; hostname: string } | { ok: false; issue: string };

/** Canonical form of a custom domain, or why it cannot be one. */
export function canonicalCustomDomain(input: string): HostnameCheck {
  if (input.length === 0) return { ok: false, issue: 'must not be empty' };
  if (input.length > MAX_HOSTNAME_LENGTH * 4) return { ok: false, issue: 'is too long' };
  if (input.includes('*')) return { ok: false, issue: 'must not be a wildcard (name each host)' };
  if (/:\d*$/.test(input) && !input.includes('/')) {
    return { ok: false, issue: 'must not have a port' };
  }
  if (NOT_IN_A_HOST_NAME.test(input)) {
    return { ok: false, issue: 'must be a bare host name (no scheme, port, path or spaces)' };
  }
  if (input.endsWith('.')) return { ok: false, issue: 'must not end with a dot' };
  if (input.startsWith('.')) return { ok: false, issue: 'must not start with a dot' };
  const ascii = domainToASCII(input);
  if (ascii === '') return { ok: false, issue: 'is not a valid (internationalised) domain name' };
  if (ascii.length > MAX_HOSTNAME_LENGTH) {
    return { ok: false, issue: `must be at most ${MAX_HOSTNAME_LENGTH} characters (in punycode)` };
  }
  const labels = ascii.split('.');
  if (labels.length < 2) return { ok: false, issue: 'must have at least two labels (e.g. api.example.com)' };
  for (const label of labels) {
    if (label.length === 0) return { ok: false, issue: 'must not have an empty label' };
    if (label.length > MAX_LABEL_LENGTH) {
      return { ok: false, issue: `each label must be at most ${MAX_LABEL_LENGTH} characters` };
    }
    if (!LABEL.test(label)) {
      return { ok: false, issue: `label "${label}" must be letters, digits and inner hyphens` };
    }
    if (label.startsWith('xn--') && !isValidPunycodeLabel(label)) {
      return { ok: false, issue: 'is not a valid (internationalised) domain name' };
    }
  }
  if (/^\d+$/.test(labels.at(-1) ?? '')) {
    return { ok: false, issue: 'must be a domain name, not an IP address' };
  }
  return { ok: true, hostname: ascii };
}

/**
 * A punycode label must decode to an internationalised label that encodes back to itself. Newer Node
 * versions' domainToASCII pass an undecodable `xn--` label through unchanged (older ones refuse it), so
 * the round trip is checked here rather than left to the runtime.
 */
function isValidPunycodeLabel(label: string): boolean {
  const unicode = domainToUnicode(label);
  return unicode !== '' && unicode !== label && domainToASCII(unicode) === label;
}

/** True when `hostname` is one of the platform's base domains or a name under one. */
export function isUnderBaseDomain(hostname: string, baseDomains: readonly string[]): boolean {
  return baseDomains.some((base) => hostname === base || hostname.endsWith(`.${base}`));
}

/** The TXT record name whose value proves a tenant controls `domain`. */
export function verificationRecordName(domain: string): string {
  return `_vantageedge-challenge.${domain}`;
}
