import { domainToASCII as nodeToASCII, domainToUnicode as nodeToUnicode } from 'node:url';
import { canonicalCustomDomain } from '@vantageedge/shared/domain/hostname';
import { describe, expect, it } from 'vitest';
import { domainToASCII, domainToUnicode } from './url.js';

// Regression test: the console's build failed once the custom-domain rules used domainToUnicode, which
// the browser stand-in for node:url did not have; the stand-in must decide like Node.
describe("the console's node:url stand-in", () => {
  const names = ['xn--mnchen-3ya.de', 'xn--bcher-kva.example', 'example.com', 'xn--fiqs8s', 'xn--ls8h.la'];

  it('decodes punycode as Node does', () => {
    for (const name of names) expect(domainToUnicode(name)).toBe(nodeToUnicode(name));
  });

  it('refuses what Node refuses: an xn-- label that does not decode and encode back to itself', () => {
    for (const label of ['xn--abc', 'xn--zz-', 'xn--ab-', 'xn--a.example']) {
      const unicode = domainToUnicode(label);
      const roundTrips = unicode !== '' && unicode !== label && domainToASCII(unicode) === label;
      const nodeUnicode = nodeToUnicode(label);
      const nodeRoundTrips =
        nodeUnicode !== '' && nodeUnicode !== label && nodeToASCII(nodeUnicode) === label;
      expect(roundTrips).toBe(nodeRoundTrips);
    }
  });

  it('encodes like Node', () => {
    for (const name of ['München.de', 'bücher.example', 'EXAMPLE.com']) {
      expect(domainToASCII(name)).toBe(nodeToASCII(name));
    }
    expect(canonicalCustomDomain('api.münchen.de')).toEqual({ ok: true, hostname: 'api.xn--mnchen-3ya.de' });
  });
});
