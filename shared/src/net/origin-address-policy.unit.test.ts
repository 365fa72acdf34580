import { networkInterfaces } from 'node:os';
import { describe, expect, it } from 'vitest';
import { parseSettings } from '../settings/load-settings.js';
import {
  DEFAULT_ORIGIN_BLOCKED_CIDRS,
  ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK,
  OriginAddressPolicy,
  originBlockedCidrsSetting,
} from './origin-address-policy.js';

/**
 * Regression tests for origins (and JWKS URLs) that pointed at the platform itself: loopback,
 * link-local metadata addresses and the unspecified address were accepted in any spelling.
 */
describe('OriginAddressPolicy with the default ranges', () => {
  const policy = new OriginAddressPolicy(DEFAULT_ORIGIN_BLOCKED_CIDRS);

  it.each([
    ['http://127.0.0.1:8001/', '127.0.0.0/8'],
    ['http://2130706433/', '127.0.0.0/8'],
    ['http://0x7f.1/', '127.0.0.0/8'],
    ['http://017700000001/', '127.0.0.0/8'],
    ['http://127.1:8001/status', '127.0.0.0/8'],
    ['http://[::ffff:127.0.0.1]/', '127.0.0.0/8'],
    ['http://[0:0:0:0:0:ffff:7f00:1]/', '127.0.0.0/8'],
    ['http://[::1]:8001/', '::1/128'],
    ['http://0/', '0.0.0.0/8'],
    ['http://0.0.0.0:8001/', '0.0.0.0/8'],
    ['http://[::]/', '::/128'],
    ['http://169.254.169.254/latest/meta-data/', '169.254.0.0/16'],
    ['http://[::ffff:169.254.169.254]/', '169.254.0.0/16'],
    ['http://2852039166/', '169.254.0.0/16'],
    ['https://[fe80::1]/', 'fe80::/10'],
    // Regression: metadata services outside link-local, and NAT64 spellings of blocked addresses.
    ['http://[fd00:ec2::254]/latest/meta-data/', 'fd00:ec2::254/128'],
    ['http://100.100.100.200/latest/meta-data/', '100.100.100.200/32'],
    ['http://[64:ff9b::169.254.169.254]/', '64:ff9b::a9fe:0/112'],
    ['http://[64:ff9b::7f00:1]/', '64:ff9b::7f00:0/104'],
    ['http://[64:ff9b:1::a9fe:a9fe]/', '64:ff9b:1::a9fe:0/112'],
    ['http://[64:ff9b:1::7f00:1]/', '64:ff9b:1::7f00:0/104'],
    ['http://168.63.129.16/machine?comp=goalstate', '168.63.129.16/32'],
    ['http://192.0.0.192/latest/', '192.0.0.192/32'],
    // Regression: Azure's WireServer and Oracle Cloud's metadata were refused as IPv4 and IPv4-mapped
    // addresses but reached through NAT64.
    ['http://[64:ff9b::168.63.129.16]/machine?comp=goalstate', '64:ff9b::a83f:8110/128'],
    ['http://[64:ff9b:1::a83f:8110]/machine?comp=goalstate', '64:ff9b:1::a83f:8110/128'],
    ['http://[64:ff9b::192.0.0.192]/latest/', '64:ff9b::c000:c0/128'],
    ['http://[64:ff9b:1::c000:c0]/latest/', '64:ff9b:1::c000:c0/128'],
    // Regression: the IPv6 addresses of other clouds' metadata and credential services were allowed.
    ['http://[fd20:ce::254]/computeMetadata/v1/', 'fd20:ce::254/128'],
    ['http://[fd00:c1::a9fe:a9fe]/opc/v2/instance/', 'fd00:c1::a9fe:a9fe/128'],
    ['http://[fd00:ec2::23]/v1/credentials', 'fd00:ec2::23/128'],
    ['http://[fd00:a9fe:a9fe::1]/v1/instance', 'fd00:a9fe:a9fe::1/128'],
    ['http://[fd00:42::42]/conf', 'fd00:42::42/128'],
  ])('refuses %s (range %s)', (url, range) => {
    expect(policy.urlRefusal(url)).toContain(`blocked range ${range}`);
  });

  it.each([
    'https://api.example.com/',
    'http://localhost:8080/', // a name: judged when it is resolved, at connect time
    'http://10.0.0.5:8080/',
    'http://172.16.3.4/',
    'http://192.168.1.10/',
    'https://93.184.216.34/',
    'http://[2001:db8::1]/',
  ])('accepts %s when configured', (url) => {
    expect(policy.urlRefusal(url)).toBeUndefined();
  });

  it('checks resolved addresses in every form a resolver returns', () => {
    expect(policy.refusal('127.0.0.1', 80)).toBeDefined();
    expect(policy.refusal('::ffff:127.0.0.1', 80)).toBeDefined();
    expect(policy.refusal('::ffff:a9fe:a9fe', 80)).toContain('169.254.0.0/16');
    expect(policy.refusal('fe80::1%eth0', 80)).toContain('fe80::/10');
    expect(policy.refusal('fd20:00ce:0000:0000:0000:0000:0000:0254', 80)).toContain('fd20:ce::254/128');
    expect(policy.refusal('10.1.2.3', 80)).toBeUndefined();
  });
});

/**
 * Regression tests: the deprecated IPv4-compatible spelling (`::127.0.0.1`, RFC 4291 §2.5.5.1) escaped
 * every IPv4 range. Linux gives such addresses to the `sit0` tunnel device when it is up (one for each
 * IPv4 address of the host, `::127.0.0.1` included), and a listener on `::` then answers them.
 */
describe('OriginAddressPolicy and IPv4-compatible IPv6 addresses', () => {
  it.each([
    ['http://[::127.0.0.1]:8001/status', '127.0.0.0/8'],
    ['http://[::7f00:1]/', '127.0.0.0/8'],
    ['http://[0:0:0:0:0:0:127.0.0.2]/', '127.0.0.0/8'],
    ['http://[::169.254.169.254]/latest/meta-data/', '169.254.0.0/16'],
    ['http://[::100.100.100.200]/', '100.100.100.200/32'],
  ])('refuses %s as the IPv4 address it carries (range %s)', (url, range) => {
    expect(new OriginAddressPolicy(DEFAULT_ORIGIN_BLOCKED_CIDRS).urlRefusal(url)).toContain(
      `blocked range ${range}`,
    );
  });

  it('checks a resolved IPv4-compatible address the same way', () => {
    const policy = new OriginAddressPolicy(DEFAULT_ORIGIN_BLOCKED_CIDRS);
    expect(policy.refusal('::127.0.0.1', 80)).toContain('127.0.0.0/8');
    expect(policy.refusal('::a9fe:a9fe', 80)).toContain('169.254.0.0/16');
  });

  it('applies ranges the operator adds, and what loopback allows', () => {
    const privateBlocked = new OriginAddressPolicy(
      parseSettings(
        { ORIGIN_BLOCKED_CIDRS: originBlockedCidrsSetting },
        { ORIGIN_BLOCKED_CIDRS: 'default,10.0.0.0/8' },
      ).ORIGIN_BLOCKED_CIDRS,
    );
    expect(privateBlocked.urlRefusal('http://[::10.0.0.1]/')).toContain('10.0.0.0/8');
    const loopbackAllowed = new OriginAddressPolicy(ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK);
    expect(loopbackAllowed.urlRefusal('http://[::127.0.0.1]/')).toBeUndefined();
    expect(loopbackAllowed.urlRefusal('http://[::1]/')).toBeUndefined();
    expect(loopbackAllowed.urlRefusal('http://[::169.254.169.254]/')).toContain('169.254.0.0/16');
  });

  it('refuses an own listener by the IPv4 address it carries, even where loopback is allowed', () => {
    const policy = new OriginAddressPolicy(ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK, [
      { host: '127.0.0.1', port: 8001 },
    ]);
    expect(policy.urlRefusal('http://[::127.0.0.1]:8001/')).toContain("platform's own listeners");
    expect(policy.urlRefusal('http://[::127.0.0.1]:8002/')).toBeUndefined();
  });
});

/**
 * Regression tests: the local-use NAT64 prefix 64:ff9b:1::/48 (RFC 8215) is split by a network into /96
 * prefixes of its choosing (64:ff9b:1:ab::/96), and only 64:ff9b:1::/96 itself was blocked, so
 * 169.254.169.254 behind any other one was allowed; nor did the IPv4 ranges an operator adds cover
 * their NAT64 forms.
 */
describe('OriginAddressPolicy and NAT64 addresses', () => {
  const policy = new OriginAddressPolicy(DEFAULT_ORIGIN_BLOCKED_CIDRS);

  it.each([
    ['http://[64:ff9b:1:ab::169.254.169.254]/latest/meta-data/', '169.254.0.0/16'],
    ['http://[64:ff9b:1:ffff:0:0:a9fe:a9fe]/latest/meta-data/', '169.254.0.0/16'],
    ['http://[64:ff9b:1:1::7f00:1]:8001/status', '127.0.0.0/8'],
    ['http://[64:ff9b:1:ab::168.63.129.16]/machine?comp=goalstate', '168.63.129.16/32'],
  ])('refuses %s as the IPv4 address it carries (range %s)', (url, range) => {
    expect(policy.urlRefusal(url)).toContain(`blocked range ${range}`);
  });

  it('checks a resolved NAT64 address the same way, and allows one carrying an allowed address', () => {
    expect(policy.refusal('64:ff9b:1:ab::a9fe:a9fe', 80)).toContain('169.254.0.0/16');
    expect(policy.refusal('64:ff9b:1:ab::5db8:d822', 443)).toBeUndefined();
    expect(policy.refusal('64:ff9b::5db8:d822', 443)).toBeUndefined();
  });

  it('applies the IPv4 ranges the operator adds to their NAT64 forms', () => {
    const privateBlocked = new OriginAddressPolicy(
      parseSettings(
        { ORIGIN_BLOCKED_CIDRS: originBlockedCidrsSetting },
        { ORIGIN_BLOCKED_CIDRS: 'default,172.29.254.0/24' },
      ).ORIGIN_BLOCKED_CIDRS,
    );
    expect(privateBlocked.urlRefusal('http://[64:ff9b::172.29.254.10]:6379/')).toContain('172.29.254.0/24');
    expect(privateBlocked.urlRefusal('http://[64:ff9b:1:ab::172.29.254.10]:6379/')).toContain(
      '172.29.254.0/24',
    );
    expect(privateBlocked.urlRefusal('http://[64:ff9b::172.29.253.10]/')).toBeUndefined();
  });
});

describe('OriginAddressPolicy own listeners', () => {
  it('refuses the listeners even when loopback is allowed, and only their ports', () => {
    const policy = new OriginAddressPolicy(ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK, [
      { host: '127.0.0.1', port: 8001 },
    ]);
    expect(policy.urlRefusal('http://127.0.0.1:8001/status')).toContain("platform's own listeners");
    expect(policy.urlRefusal('http://[::ffff:127.0.0.1]:8001/')).toContain("platform's own listeners");
    expect(policy.urlRefusal('http://127.0.0.1:8002/')).toBeUndefined();
    // Connecting to the unspecified address reaches the local listener too.
    expect(new OriginAddressPolicy([], [{ host: '127.0.0.1', port: 8001 }]).refusal('0.0.0.0', 8001)).toBe(
      "0.0.0.0:8001 is one of the platform's own listeners",
    );
  });

  it('treats a 0.0.0.0 bind as every local address at that port', () => {
    const policy = new OriginAddressPolicy([], [{ host: '0.0.0.0', port: 8000 }]);
    const local = Object.values(networkInterfaces())
      .flat()
      .map((entry) => entry?.address)
      .filter((address): address is string => address !== undefined);
    for (const address of ['127.0.0.1', '0.0.0.0', ...local])
      expect(policy.refusal(address, 8000), address).toBeDefined();
    expect(policy.refusal('10.255.255.1', 8000)).toBeUndefined();
    expect(policy.refusal('127.0.0.1', 8001)).toBeUndefined();
  });

  it('refuses a listener behind the NAT64 forms of its address, which a translator delivers to it', () => {
    const policy = new OriginAddressPolicy([], [{ host: '10.0.0.5', port: 8001 }]);
    expect(policy.urlRefusal('http://[64:ff9b::10.0.0.5]:8001/status')).toBe(
      "64:ff9b::a00:5:8001 is one of the platform's own listeners",
    );
    expect(policy.urlRefusal('http://[64:ff9b:1:ab::10.0.0.5]:8001/status')).toBe(
      "64:ff9b:1:ab::a00:5:8001 is one of the platform's own listeners",
    );
    expect(policy.refusal('64:ff9b::a00:5', 8002)).toBeUndefined();
    const everyAddress = new OriginAddressPolicy([], [{ host: '0.0.0.0', port: 8000 }]);
    expect(everyAddress.refusal('64:ff9b::127.0.0.1', 8000)).toBe(
      "64:ff9b::7f00:1:8000 is one of the platform's own listeners",
    );
  });

  it('ignores a listener on port 0 until its real port is known', () => {
    const policy = new OriginAddressPolicy([]);
    policy.addOwnListener({ host: '127.0.0.1', port: 0 });
    expect(policy.refusal('127.0.0.1', 0)).toBeUndefined();
    policy.addOwnListener({ host: '127.0.0.1', port: 41234 });
    expect(policy.refusal('127.0.0.1', 41234)).toBeDefined();
  });
});

describe('ORIGIN_BLOCKED_CIDRS', () => {
  const parse = (value?: string) =>
    parseSettings({ ORIGIN_BLOCKED_CIDRS: originBlockedCidrsSetting }, { ORIGIN_BLOCKED_CIDRS: value })
      .ORIGIN_BLOCKED_CIDRS;

  it('defaults to loopback, unspecified and link-local (and their IPv4-mapped forms)', () => {
    expect(parse()).toEqual([...DEFAULT_ORIGIN_BLOCKED_CIDRS]);
    expect(parse('')).toEqual([...DEFAULT_ORIGIN_BLOCKED_CIDRS]);
  });

  // Regression: an operator who listed the private ranges to block them too (`10.0.0.0/8,…`) replaced
  // the default and so unblocked loopback and the cloud metadata addresses.
  it('reads `default` as the default ranges, so more can be blocked without giving up those', () => {
    expect(parse('default,10.0.0.0/8, 172.16.0.0/12')).toEqual([
      ...DEFAULT_ORIGIN_BLOCKED_CIDRS,
      '10.0.0.0/8',
      '172.16.0.0/12',
    ]);
    const policy = new OriginAddressPolicy(parse('10.0.0.0/8,default'));
    expect(policy.refusal('169.254.169.254', 80)).toContain('169.254.0.0/16');
    expect(policy.refusal('10.1.2.3', 80)).toContain('10.0.0.0/8');
  });

  it('takes a comma list of ranges and single addresses', () => {
    expect(parse('10.0.0.0/8, fd00::/8,192.0.2.7')).toEqual(['10.0.0.0/8', 'fd00::/8', '192.0.2.7']);
  });

  it.each(['10.0.0.0/33', 'example.com', '10.0.0.0/x', '::1/129'])(
    'refuses %s naming the setting',
    (value) => {
      expect(() => parse(value)).toThrow(
        /ORIGIN_BLOCKED_CIDRS: must be a comma-separated list of CIDR ranges/,
      );
    },
  );
});
