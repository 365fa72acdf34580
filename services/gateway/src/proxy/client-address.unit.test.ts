import type { IncomingMessage } from 'node:http';
import { ClientAddressResolver } from '@vantageedge/shared/net/client-address';
import { describe, expect, it } from 'vitest';
import { parseGatewaySettings } from '../settings.js';
import { PRIVATE_PROXY_RANGES, trustedProxiesFromSettings } from './client-address.js';

function request(peer: string, xff?: string | string[]): IncomingMessage {
  return {
    socket: { remoteAddress: peer },
    headers: xff === undefined ? {} : { 'x-forwarded-for': xff },
  } as unknown as IncomingMessage;
}

/** Regression tests for the client address taken from the leftmost (client-written) X-Forwarded-For entry. */
describe('ClientAddressResolver', () => {
  const resolver = new ClientAddressResolver(['10.0.0.0/8', '192.0.2.10']);

  it('ignores X-Forwarded-For from a peer that is not a trusted proxy', () => {
    expect(resolver.resolve(request('203.0.113.5', '6.6.6.6'))).toEqual({
      clientIp: '203.0.113.5',
      peerIp: '203.0.113.5',
      peerTrusted: false,
    });
    expect(new ClientAddressResolver([]).resolve(request('::ffff:10.0.0.1', '6.6.6.6')).clientIp).toBe(
      '10.0.0.1',
    );
  });

  it.each([
    ['6.6.6.6, 203.0.113.9', '203.0.113.9'],
    ['6.6.6.6, 203.0.113.9, 10.1.1.1, 192.0.2.10', '203.0.113.9'],
    [['6.6.6.6, 203.0.113.9', '10.1.1.1'], '203.0.113.9'],
    ['10.9.9.9, 10.1.1.1', '10.9.9.9'], // every hop a proxy: the furthest one
    ['6.6.6.6, not-an-ip, 10.1.1.1', '10.1.1.1'], // garbage ends the chain at the last trusted hop
    ['', '10.0.0.1'],
    ['6.6.6.6, [2001:db8::7]:443', '2001:db8::7'],
    ['6.6.6.6, 198.51.100.2:8080', '198.51.100.2'],
    ['6.6.6.6, ::ffff:198.51.100.3', '198.51.100.3'],
  ])('behind trusted proxies, X-Forwarded-For %j gives client %s', (xff, client) => {
    const resolved = resolver.resolve(request('10.0.0.1', xff));
    expect(resolved.clientIp).toBe(client);
    expect(resolved.peerTrusted).toBe(true);
    expect(resolved.peerIp).toBe('10.0.0.1');
  });
});

describe('GATEWAY_TRUSTED_PROXIES and the deprecated GATEWAY_TRUST_PROXY', () => {
  const settings = (env: Record<string, string>) =>
    trustedProxiesFromSettings(parseGatewaySettings({ API_KEY_PEPPER: 'p'.repeat(32), ...env }));

  it('trusts nobody by default', () => {
    expect(settings({})).toEqual({ ranges: [], warning: undefined });
  });

  it('takes a CIDR list and refuses anything else, naming the setting', () => {
    expect(settings({ GATEWAY_TRUSTED_PROXIES: '10.0.0.0/8, 2001:db8::/32' }).ranges).toEqual([
      '10.0.0.0/8',
      '2001:db8::/32',
    ]);
    expect(() => settings({ GATEWAY_TRUSTED_PROXIES: 'lb.internal' })).toThrow(/GATEWAY_TRUSTED_PROXIES/);
  });

  it('reads GATEWAY_TRUST_PROXY=true as the private and loopback ranges, with a deprecation warning', () => {
    const resolved = settings({ GATEWAY_TRUST_PROXY: 'true' });
    expect(resolved.ranges).toEqual(PRIVATE_PROXY_RANGES);
    expect(resolved.warning).toMatch(/GATEWAY_TRUST_PROXY is deprecated.*GATEWAY_TRUSTED_PROXIES/);
    expect(settings({ GATEWAY_TRUST_PROXY: 'false' })).toEqual({ ranges: [], warning: undefined });
  });

  it('lets GATEWAY_TRUSTED_PROXIES win over GATEWAY_TRUST_PROXY', () => {
    const resolved = settings({ GATEWAY_TRUST_PROXY: 'true', GATEWAY_TRUSTED_PROXIES: '192.0.2.1' });
    expect(resolved.ranges).toEqual(['192.0.2.1']);
    expect(resolved.warning).toMatch(/ignored/);
  });
});
