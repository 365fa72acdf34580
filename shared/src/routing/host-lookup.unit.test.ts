import { describe, expect, it } from 'vitest';
import { hostHeaderName, lookupHost, preservedHost } from './host-lookup.js';

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

  it('never reads a base domain one label under another base domain as a subdomain host', () => {
    for (const bases of [
      ['vantageedge.dev', 'eu.vantageedge.dev'],
      ['eu.vantageedge.dev', 'vantageedge.dev'],
    ]) {
      expect(lookupHost('EU.vantageedge.dev.', bases), bases.join()).toEqual({
        kind: 'none',
        host: 'eu.vantageedge.dev',
        reason: 'base_domain',
      });
      expect(lookupHost('acme.eu.vantageedge.dev', bases)).toEqual({
        kind: 'subdomain',
        host: 'acme.eu.vantageedge.dev',
        label: 'acme',
      });
      expect(lookupHost('acme.vantageedge.dev', bases)).toMatchObject({ kind: 'subdomain', label: 'acme' });
    }
  });

  it('never reads the parent of a base domain nested deeper under another as a subdomain host', () => {
    for (const bases of [
      ['vantageedge.dev', 'apps.eu.vantageedge.dev'],
      ['apps.eu.vantageedge.dev', 'vantageedge.dev'],
    ]) {
      expect(lookupHost('EU.vantageedge.dev', bases), bases.join()).toEqual({
        kind: 'none',
        host: 'eu.vantageedge.dev',
        reason: 'base_domain',
      });
      expect(lookupHost('acme.apps.eu.vantageedge.dev', bases)).toMatchObject({
        kind: 'subdomain',
        label: 'acme',
      });
      expect(lookupHost('apps.vantageedge.dev', bases)).toMatchObject({ kind: 'subdomain', label: 'apps' });
    }
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

  it('looks up no tenant for a Host that is not host[:port]', () => {
    for (const header of [
      'acme.localhost:@evil.example',
      'acme.localhost:1:2',
      'acme.localhost/x',
      'a b.localhost',
    ])
      expect(lookupHost(header, BASES), header).toMatchObject({ kind: 'none', reason: 'malformed' });
  });
});

describe('hostHeaderName (the one reading of a Host header)', () => {
  it('gives the host name without port or trailing dot, in lower case', () => {
    expect(hostHeaderName('API.Acme.example.:8443')).toBe('api.acme.example');
    expect(hostHeaderName('acme.localhost:')).toBe('acme.localhost');
    expect(hostHeaderName('10.0.0.1:80')).toBe('10.0.0.1');
    expect(hostHeaderName('[2001:DB8::1]:443')).toBe('[2001:db8::1]');
  });

  it('refuses userinfo, extra colons, paths, spaces and ports past five digits', () => {
    for (const header of [
      'a@acme.localhost',
      'acme.localhost:x@evil',
      'acme.localhost:1:2',
      'acme.localhost\\x',
      'acme..localhost',
      'acme.localhost:123456',
      '',
    ])
      expect(hostHeaderName(header), header).toBeUndefined();
  });
});

describe('preservedHost (the Host an origin gets from a route with preserve_host)', () => {
  it('is the name the tenant was resolved from, with the client’s port', () => {
    expect(preservedHost('acme.localhost')).toBe('acme.localhost');
    expect(preservedHost('API.Acme.example.:8443')).toBe('api.acme.example:8443');
    expect(preservedHost('api.acme.example:08443')).toBe('api.acme.example:8443');
    expect(preservedHost('[2001:DB8::1]:443')).toBe('[2001:db8::1]:443');
    expect(preservedHost('[2001:db8::1]')).toBe('[2001:db8::1]');
  });

  it('passes on no port a listener could not have', () => {
    for (const header of ['acme.localhost:', 'acme.localhost:0', 'acme.localhost:00', 'acme.localhost:65536'])
      expect(preservedHost(header), header).toBe('acme.localhost');
  });

  it('names no host for a Host that is not host[:port]', () => {
    for (const header of ['a@acme.localhost', 'acme.localhost:1:2', 'acme.localhost:x@evil', ''])
      expect(preservedHost(header), header).toBeUndefined();
  });
});
