import { DomainError } from './errors.js';

/**
 * Labels no tenant may take as its subdomain (RESERVED_SUBDOMAINS replaces or extends them): on every
 * platform base domain, `<label>.<base>` reads as the platform's own host to its users — a login page
 * on `login.vantageedge.dev` is taken for the platform's — or is a host name that mail clients, browsers
 * and mail servers look up for the whole domain on their own (autodiscover, wpad, mta-sts, openpgpkey).
 */
export const DEFAULT_RESERVED_SUBDOMAINS: readonly string[] = [
  // The platform's own sites and services.
  'account',
  'accounts',
  'admin',
  'api',
  'app',
  'assets',
  'auth',
  'billing',
  'cdn',
  'console',
  'control',
  'control-plane',
  'dashboard',
  'docs',
  'gateway',
  'help',
  'id',
  'login',
  'logout',
  'metrics',
  'oauth',
  'platform',
  'portal',
  'security',
  'signin',
  'signup',
  'sso',
  'static',
  'status',
  'support',
  'vantageedge',
  'www',
  // Names other software looks up under the domain by convention.
  'autoconfig',
  'autodiscover',
  'imap',
  'localhost',
  'mail',
  'mta-sts',
  'mx',
  'ns1',
  'ns2',
  'openpgpkey',
  'pop',
  'pop3',
  'smtp',
  'webmail',
  'wpad',
];

/**
 * The labels whose host under one base domain is another base domain or one of its parents (`eu` for
 * `eu.vantageedge.dev` or `apps.eu.vantageedge.dev` beside `vantageedge.dev`): that host is the parent
 * of every tenant host under the nested base domain, so a tenant answering there would speak for all of
 * them (its `Strict-Transport-Security` with `includeSubDomains`, cookies its pages set for the domain).
 * Gateways serve no tenant on it.
 */
export function labelsNamingBaseDomains(baseDomains: readonly string[]): string[] {
  const labels: string[] = [];
  for (const nested of baseDomains)
    for (const base of baseDomains) {
      if (!nested.endsWith(`.${base}`)) continue;
      const above = nested.slice(0, nested.length - base.length - 1);
      labels.push(above.slice(above.lastIndexOf('.') + 1));
    }
  return labels;
}

/**
 * `--` in the third and fourth characters marks a reserved LDH label (RFC 5890 §2.3.1): `xn--` ones are
 * IDNs, which browsers show in Unicode, so `xn--80ak6aa92e` shows as a Cyrillic lookalike of "apple" and
 * one tenant could pass for another. The platform offers ASCII names only.
 */
const RESERVED_LDH_LABEL = /^..--/;

/**
 * Refuses to give a tenant a subdomain it may not take now: a reserved name (409, as a taken one: the
 * platform holds it) or a reserved LDH label (400). Checked when a subdomain is given, not on one a
 * tenant already holds: a tenant keeps a name reserved after it took it.
 */
export function requireClaimableSubdomain(subdomain: string, reserved: readonly string[]): void {
  if (RESERVED_LDH_LABEL.test(subdomain)) {
    throw new DomainError(
      'invalid',
      `${subdomain} is a reserved DNS label form (such as xn-- IDNs)`,
      'subdomain',
      {
        issue:
          'must not have "--" as its third and fourth characters (xn-- labels show as Unicode lookalikes)',
      },
    );
  }
  if (reserved.includes(subdomain)) {
    throw new DomainError('conflict', `subdomain ${subdomain} is reserved by the platform`, 'subdomain', {
      issue: 'reserved by the platform',
    });
  }
}
