import { isIP as nodeIsIP } from 'node:net';
import { describe, expect, it } from 'vitest';
import { isIP } from './net.js';

describe("the console's isIP stand-in", () => {
  it('agrees with node:net on addresses, ranges and junk', () => {
    const samples = [
      '203.0.113.7',
      '10.0.0.0',
      '255.255.255.255',
      '256.1.1.1',
      '01.2.3.4',
      '1.2.3',
      '::1',
      '2001:db8::',
      '::ffff:192.0.2.1',
      'fe80::1%eth0',
      '2001:db8:::1',
      'example.com',
      '',
      '1.2.3.4/24',
    ];
    for (const sample of samples) expect(isIP(sample), sample).toBe(nodeIsIP(sample));
  });
});
