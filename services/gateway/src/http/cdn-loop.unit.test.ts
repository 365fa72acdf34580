import { describe, expect, it } from 'vitest';
import { platformPasses, withPlatformEntry } from './cdn-loop.js';

describe('CDN-Loop', () => {
  it.each([
    [undefined, 0],
    ['FooCDN, cdn.example.net:8080', 0],
    ['vantageedge', 1],
    ['VantageEdge;hops=1', 1],
    ['FooCDN,vantageedge , \tvantageedge; x="y"', 2],
    // Other CDNs' ids that only start or end with the gateway's are theirs.
    ['vantageedge2, my-vantageedge, vantageedge.example.com', 0],
    [['vantageedge', 'FooCDN, vantageedge'], 2],
  ])('counts the gateway’s entries in %j: %i', (value, passes) => {
    expect(platformPasses(value === undefined ? {} : { 'cdn-loop': value as string })).toBe(passes);
  });

  it('appends the gateway’s entry to every line the client sent', () => {
    expect(withPlatformEntry(undefined)).toBe('vantageedge');
    expect(withPlatformEntry('')).toBe('vantageedge');
    expect(withPlatformEntry(['a', 'b; p=1'])).toBe('a, b; p=1, vantageedge');
  });
});
