import { tenantSettings } from '@vantageedge/shared/domain/gateway-config';
import { canonicalCustomDomain, isUnderBaseDomain } from '@vantageedge/shared/domain/hostname';
import { describe, expect, it } from 'vitest';
import {
  type CustomDomainCommand,
  CustomDomainVerificationError,
  MAX_CUSTOM_DOMAINS_PER_TENANT,
  type TenantDomains,
  tenantDomainsDecider,
} from './custom-domain.js';
import { DomainError, type FoldableEvent } from './decision.js';

const BASES = ['vantageedge.dev', 'localhost'];
/** A day after the claims below were made. */
const NOW = '2026-01-02T00:00:00.000Z';
const tenant = {
  tenant_id: 't1',
  name: 'acme',
  subdomain: 'acme',
  clerk_org_id: null,
  settings: tenantSettings.parse({}),
};

function apply(state: TenantDomains, command: CustomDomainCommand): TenantDomains {
  let next = state;
  for (const event of tenantDomainsDecider.decide(command, state).events) {
    next = tenantDomainsDecider.evolve(next, {
      ...event,
      metadata: { occurred_at: '2026-01-01T00:00:00.000Z' },
    } as FoldableEvent);
  }
  return next;
}

function liveTenant(): TenantDomains {
  return tenantDomainsDecider.evolve(tenantDomainsDecider.initialState(), {
    type: 'TenantCreated',
    data: tenant,
    metadata: { occurred_at: '2026-01-01T00:00:00.000Z' },
  });
}

const add = (
  domain: string,
  assignedByPlatformAdmin = false,
  verifiedElsewhere = false,
): CustomDomainCommand => ({
  type: 'CreateCustomDomain',
  claim: { custom_domain_id: `id-${domain}`, domain, verification_token: `token-${domain}` },
  assignedByPlatformAdmin,
  baseDomains: BASES,
  verifiedElsewhere,
});

describe('custom domain syntax (canonicalCustomDomain)', () => {
  it.each([
    ['api.example.com', 'api.example.com'],
    ['API.Example.COM', 'api.example.com'],
    ['bücher.example', 'xn--bcher-kva.example'],
    ['xn--bcher-kva.example', 'xn--bcher-kva.example'],
    ['a-b.c-d.example', 'a-b.c-d.example'],
  ])('accepts %s as %s', (input, canonical) => {
    expect(canonicalCustomDomain(input)).toEqual({ ok: true, hostname: canonical });
  });

  it.each([
    ['', /empty/],
    ['api.example.com:443', /port/],
    ['*.example.com', /wildcard/],
    ['api.example.com.', /end with a dot/],
    ['.example.com', /start with a dot/],
    ['https://api.example.com', /bare host name/],
    ['api.example.com/path', /bare host name/],
    ['api example.com', /bare host name/],
    ['localhost', /two labels/],
    ['a..example.com', /empty label/],
    ['-api.example.com', /letters, digits/],
    ['api_v1.example.com', /letters, digits/],
    ['xn--zz.example', /internationalised/],
    ['1.2.3.4', /IP address/],
    [`${'a'.repeat(64)}.example.com`, /63 characters/],
    [`${'abcdefghi.'.repeat(25)}example.com`, /253 characters/],
  ])('refuses %j', (input, issue) => {
    const result = canonicalCustomDomain(input);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.issue).toMatch(issue);
  });

  it('knows hosts under a base domain', () => {
    expect(isUnderBaseDomain('acme.localhost', BASES)).toBe(true);
    expect(isUnderBaseDomain('vantageedge.dev', BASES)).toBe(true);
    expect(isUnderBaseDomain('a.b.vantageedge.dev', BASES)).toBe(true);
    expect(isUnderBaseDomain('notvantageedge.dev', BASES)).toBe(false);
    expect(isUnderBaseDomain('api.example.com', BASES)).toBe(false);
  });
});

describe('custom domain decider', () => {
  it('claims a domain as pending, reserving nothing: the name is reserved once verified', () => {
    const decision = tenantDomainsDecider.decide(add('api.acme.example'), liveTenant());
    expect(decision.events).toEqual([
      {
        type: 'CustomDomainCreated',
        data: {
          tenant_id: 't1',
          custom_domain_id: 'id-api.acme.example',
          domain: 'api.acme.example',
          verification_token: 'token-api.acme.example',
        },
      },
    ]);
    expect(decision.reservations).toBeUndefined();
  });

  it('lets a platform admin assign a domain verified at once, reserving its name', () => {
    const decision = tenantDomainsDecider.decide(add('api.acme.example', true), liveTenant());
    expect(decision.events.map((e) => e.type)).toEqual(['CustomDomainCreated', 'CustomDomainVerified']);
    expect(decision.events[1]?.data).toMatchObject({ method: 'platform_admin' });
    expect(decision.reservations).toEqual({ claim: ['custom_domain:api.acme.example'] });
  });

  it('refuses a claim, or an assignment, of a name another tenant holds verified', () => {
    for (const assigned of [false, true]) {
      expect(() =>
        tenantDomainsDecider.decide(add('api.acme.example', assigned, true), liveTenant()),
      ).toThrow(expect.objectContaining({ kind: 'conflict', field: 'domain' }));
    }
  });

  it('refuses platform hosts, a second claim of the same name and more than the limit', () => {
    for (const host of ['acme.localhost', 'other.vantageedge.dev', 'vantageedge.dev']) {
      expect(() => tenantDomainsDecider.decide(add(host), liveTenant())).toThrow(
        expect.objectContaining({ kind: 'invalid', field: 'domain' }),
      );
    }
    const once = apply(liveTenant(), add('api.acme.example'));
    expect(() => tenantDomainsDecider.decide(add('api.acme.example'), once)).toThrow(
      expect.objectContaining({ kind: 'conflict' }),
    );
    let full = liveTenant();
    for (let i = 0; i < MAX_CUSTOM_DOMAINS_PER_TENANT; i++) full = apply(full, add(`d${i}.acme.example`));
    expect(() => tenantDomainsDecider.decide(add('one-more.acme.example'), full)).toThrow(DomainError);
  });

  // Regression: a 253-character name was claimed (201, reserved platform-wide), but its TXT record name
  // `_vantageedge-challenge.<domain>` is 276 characters, which no DNS name can be: every verify answered
  // 422 "the DNS lookup failed (EBADNAME); try again later", for ever.
  it('refuses a claim whose TXT record name would be too long to exist; a platform admin may still assign it', () => {
    const label = 'a'.repeat(63);
    const longest = [label, label, label, 'b'.repeat(57), 'com'].join('.');
    expect(canonicalCustomDomain(longest)).toEqual({ ok: true, hostname: longest });
    expect(() => tenantDomainsDecider.decide(add(longest), liveTenant())).toThrow(
      expect.objectContaining({ kind: 'invalid', field: 'domain' }),
    );
    const fits = [label, label, label, 'd'.repeat(34), 'com'].join('.'); // 230: its TXT name is 253
    expect(canonicalCustomDomain(fits)).toEqual({ ok: true, hostname: fits });
    expect(tenantDomainsDecider.decide(add(fits), liveTenant()).events).toHaveLength(1);
    expect(tenantDomainsDecider.decide(add(longest, true), liveTenant()).events).toHaveLength(2);
  });

  it('verifies only when the TXT record holds the token issued for this tenant and domain', () => {
    const pending = apply(liveTenant(), add('api.acme.example'));
    expect(() =>
      tenantDomainsDecider.decide(
        { type: 'VerifyCustomDomain', domain: 'api.acme.example', txtValues: [], now: NOW },
        pending,
      ),
    ).toThrow(CustomDomainVerificationError);
    expect(() =>
      tenantDomainsDecider.decide(
        {
          type: 'VerifyCustomDomain',
          domain: 'api.acme.example',
          txtValues: ['token-other.example'],
          now: NOW,
        },
        pending,
      ),
    ).toThrow(/does not hold/);
    const proof: CustomDomainCommand = {
      type: 'VerifyCustomDomain',
      domain: 'api.acme.example',
      txtValues: ['unrelated', 'token-api.acme.example'],
      now: NOW,
    };
    expect(tenantDomainsDecider.decide(proof, pending).reservations).toEqual({
      claim: ['custom_domain:api.acme.example'],
    });
    const verified = apply(pending, proof);
    expect(verified.domains.get('api.acme.example')).toMatchObject({
      status: 'verified',
      verification_method: 'dns_txt',
    });
    // Verifying again changes nothing.
    expect(
      tenantDomainsDecider.decide(
        { type: 'VerifyCustomDomain', domain: 'api.acme.example', txtValues: [], now: NOW },
        verified,
      ).events,
    ).toEqual([]);
  });

  it('refuses a pending claim older than its verification window, even with the right record', () => {
    const pending = apply(liveTenant(), add('api.acme.example'));
    const verifyAt = (now: string) =>
      tenantDomainsDecider.decide(
        {
          type: 'VerifyCustomDomain',
          domain: 'api.acme.example',
          txtValues: ['token-api.acme.example'],
          now,
        },
        pending,
      );
    expect(verifyAt('2026-01-07T23:59:59.000Z').events.map((e) => e.type)).toEqual(['CustomDomainVerified']);
    let refusal: unknown;
    try {
      verifyAt('2026-01-08T00:00:01.000Z');
    } catch (error) {
      refusal = error;
    }
    expect(refusal).toBeInstanceOf(DomainError);
    expect(refusal).toMatchObject({
      kind: 'unprocessable',
      field: 'domain',
      code: 'domain_verification_expired',
    });
  });

  it('removes a pending claim for a proof of another tenant, and keeps a verified one', () => {
    const two = apply(apply(liveTenant(), add('a.acme.example')), add('b.acme.example', true));
    const pending = tenantDomainsDecider.decide(
      { type: 'ReleasePendingClaim', domain: 'a.acme.example' },
      two,
    );
    expect(pending.events.map((e) => e.type)).toEqual(['CustomDomainDeleted']);
    expect(pending.reservations).toEqual({ release: ['custom_domain:a.acme.example'] });
    const verified = tenantDomainsDecider.decide(
      { type: 'ReleasePendingClaim', domain: 'b.acme.example' },
      two,
    );
    expect(verified.events).toEqual([]);
  });

  it('removes a domain and frees its name; deleting the tenant removes and frees them all', () => {
    const two = apply(apply(liveTenant(), add('a.acme.example')), add('b.acme.example', true));
    const removal = tenantDomainsDecider.decide(
      { type: 'DeleteCustomDomain', domain: 'a.acme.example' },
      two,
    );
    expect(removal.events.map((e) => e.type)).toEqual(['CustomDomainDeleted']);
    expect(removal.reservations).toEqual({ release: ['custom_domain:a.acme.example'] });
    expect(() =>
      tenantDomainsDecider.decide({ type: 'DeleteCustomDomain', domain: 'nope.example' }, two),
    ).toThrow(expect.objectContaining({ kind: 'not_found' }));

    const deletion = tenantDomainsDecider.decide({ type: 'DeleteTenant' }, two);
    expect(deletion.events.map((e) => e.type)).toEqual([
      'CustomDomainDeleted',
      'CustomDomainDeleted',
      'TenantDeleted',
    ]);
    expect(deletion.reservations?.release).toEqual([
      'subdomain:acme',
      'custom_domain:a.acme.example',
      'custom_domain:b.acme.example',
    ]);
    const deleted = apply(two, { type: 'DeleteTenant' });
    expect(deleted.tenant.status).toBe('deleted');
    expect(deleted.domains.size).toBe(0);
    expect(() => tenantDomainsDecider.decide(add('c.acme.example'), deleted)).toThrow(
      expect.objectContaining({ kind: 'not_found' }),
    );
  });
});
