import { afterEach, describe, expect, it, vi } from 'vitest';
import { corsPolicy } from '../domain/route-policies.js';
import { compileCors, originAllowed, preflightRefusal } from './cors-rules.js';

/**
 * Regression: an Origin was checked against every wildcard whose suffix it ends with by a regular
 * expression over everything before the suffix, however long. A route with 50 nested wildcards
 * (`https://*.x.com`, `https://*.x.x.com`, …) and a client sending a 16 KiB Origin of labels ending in an
 * invalid one held a replica's event loop ≈4 ms per request (≈80 plain proxied requests), and such an
 * Origin is never remembered (over 300 characters). No site has a host over 253 characters (RFC 1035),
 * so an Origin longer than scheme, such a host and a port is refused before any wildcard is tried.
 */
describe('CORS origins: bounded work for a long Origin', () => {
  const suffix = `${'x.'.repeat(49)}com`;
  const cors = compileCors(
    corsPolicy.parse({
      allow_origins: Array.from({ length: 50 }, (_, i) => `https://*.${'x.'.repeat(49 - i)}com`),
    }),
    ['GET'],
  );
  const longOrigin = (labels: string) => `https://${labels}${suffix}`;

  afterEach(() => vi.restoreAllMocks());

  it('never runs the label check over more than a host name’s length', () => {
    const test = vi.spyOn(RegExp.prototype, 'test');
    expect(originAllowed(cors, longOrigin(`${'a.'.repeat(7_900)}_.`))).toBe(false);
    const longest = Math.max(0, ...test.mock.calls.map(([input]) => String(input).length));
    expect(longest).toBeLessThanOrEqual(253);
  });

  // 50 nested wildcards each ran the label check over the same labels: ≈60–90 µs of the event loop for
  // each request with a new Origin (one a route remembers no verdict for), ≈1.5 µs with one wildcard.
  it('checks an Origin’s labels once, however many wildcards it ends with', () => {
    const runsFor = (policy: typeof cors, origin: string) => {
      const test = vi.spyOn(RegExp.prototype, 'test');
      const exec = vi.spyOn(RegExp.prototype, 'exec');
      expect(originAllowed(policy, origin)).toBe(false);
      const runs = test.mock.calls.length + exec.mock.calls.length;
      vi.restoreAllMocks();
      return runs;
    };
    const one = compileCors(corsPolicy.parse({ allow_origins: [`https://*.${suffix}`] }), ['GET']);
    const origin = longOrigin(`${'a-'.repeat(60)}b.`);
    const withOne = runsFor(one, origin);
    expect(withOne).toBeGreaterThan(0);
    expect(runsFor(cors, origin)).toBe(withOne);
  });

  it('allows what a label check of each wildcard’s subdomain allows', () => {
    const labels = /^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
    const listed = ['https://*.x.com', 'https://*.x.x.com', 'http://*.x.com:8080', 'https://*.b.x.com'];
    const policy = compileCors(corsPolicy.parse({ allow_origins: listed }), ['GET']);
    const subdomains = [
      'a',
      'a-b',
      '-a',
      'a-',
      'a.b',
      'a..b',
      '.a',
      `${'a'.repeat(63)}`,
      `${'a'.repeat(64)}`,
    ];
    for (const sub of [...subdomains, ...subdomains.map((s) => `${s}.${'c'.repeat(63)}`), 'a_b', 'b']) {
      for (const [scheme, rest] of [
        ['https://', '.x.com'],
        ['https://', '.x.x.com'],
        ['https://', '.b.x.com'],
        ['http://', '.x.com:8080'],
        ['http://', '.x.com'],
      ] as const) {
        const origin = `${scheme}${sub}${rest}`;
        const expected = listed.some((entry) => {
          const [entryScheme, entrySuffix] = entry.split('*');
          if (!origin.startsWith(entryScheme!) || !origin.endsWith(entrySuffix!)) return false;
          const between = origin.slice(entryScheme!.length, origin.length - entrySuffix!.length);
          return between !== '' && labels.test(between);
        });
        expect(originAllowed(policy, origin), origin).toBe(expected);
      }
    }
  });

  it('refuses an Origin longer than https://, a 253-character host and a port, preflight included', () => {
    const tooLong = longOrigin('a.'.repeat(100));
    expect(originAllowed(cors, tooLong)).toBe(false);
    expect(preflightRefusal(cors, tooLong, 'GET', undefined)).toBe('this origin is not allowed');
  });

  it('still allows a subdomain of any length a host name may have', () => {
    expect(originAllowed(cors, 'https://app.x.com')).toBe(true);
    const host = `${'a'.repeat(61)}.${'b'.repeat(61)}.${'c'.repeat(27)}.${suffix}`;
    expect(host.length).toBe(253);
    expect(originAllowed(cors, `https://${host}`)).toBe(true);
  });
});

describe("CORS origins: a scheme's default port", () => {
  const cors = compileCors(
    corsPolicy.parse({
      allow_origins: ['https://app.example.com:443', 'http://*.example.org:80', 'https://b.example'],
    }),
    ['GET'],
  );

  it('is the same origin without it, listed or sent with it', () => {
    expect(originAllowed(cors, 'https://app.example.com')).toBe(true);
    expect(originAllowed(cors, 'http://a.example.org')).toBe(true);
    expect(originAllowed(cors, 'https://b.example:443')).toBe(true);
  });

  it('is only the default port of its own scheme', () => {
    expect(originAllowed(cors, 'http://app.example.com')).toBe(false);
    expect(originAllowed(cors, 'https://app.example.com:80')).toBe(false);
    expect(originAllowed(cors, 'http://b.example:80')).toBe(false);
    expect(originAllowed(cors, 'https://b.example:4430')).toBe(false);
  });
});
