import { describe, expect, it } from 'vitest';
import { lookupHost } from './host-lookup.js';

const BASES = ['vantageedge.dev', 'localhost'];

describe('lookupHost (which host table a gateway looks a Host header up in)', () => {
  it('reads a single label under a base domain as a subdomain, whatever the case, port or trailing dot', () => {
    expect(lookupHost('Acme.VantageEdge.dev:8443', BASES)).toEqual({
      kind: 'subdomain',
      host: 'acme.vantageedge.dev',
      label: 'acme',
    });
    expect(lookupHost('acme.localhost.', BASES)).toEqual({
      kind: 'subdomain',
      host: 'acme.localhost',
      label: 'acme',
    });
  });

  it('never reads a host under a base domain as a custom domain', () => {
    expect(lookupHost('a.b.vantageedge.dev', BASES)).toEqual({
      kind: 'none',
      host: 'a.b.vantageedge.dev',
      reason: 'base_domain',
    });
    expect(lookupHost('vantageedge.dev', BASES)).toMatchObject({ kind: 'none', reason: 'base_domain' });
  });

  it('reads any other host as a custom domain, and refuses no host and IPv6 literals', () => {
    expect(lookupHost('API.Acme.example', BASES)).toEqual({
      kind: 'custom_domain',
      host: 'api.acme.example',
    });
    expect(lookupHost('notvantageedge.dev', BASES)).toEqual({
      kind: 'custom_domain',
      host: 'notvantageedge.dev',
    });
    expect(lookupHost(undefined, BASES)).toMatchObject({ kind: 'none', reason: 'missing' });
    expect(lookupHost('[::1]:8000', BASES)).toMatchObject({ kind: 'none', reason: 'ip_literal' });
  });
});
