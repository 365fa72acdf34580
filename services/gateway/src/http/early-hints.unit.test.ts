import { describe, expect, it } from 'vitest';
import type { GatewayExchange } from '../pipeline/exchange.js';
import { relayEarlyHints } from './early-hints.js';

/**
 * node checks each Link it is given for a 103 against a regular expression (lib/internal/validators.js,
 * copied here) that backtracks through every way of splitting each `name=value` parameter of a Link it
 * refuses: one of 40 parameters ending in a lone `"` (about 200 bytes, well under the 8 KiB bound) held
 * the replica's event loop, every tenant's traffic, for longer than anyone waits (24 took 2.4 s, each one
 * more doubles it). The gateway checks an origin's Link lines itself, in one pass, and hands node only
 * those node sends.
 */
const NODE_LINK_VALUE = /^(?:<[^>\r\n]*>)(?:\s*;\s*[^;"\s]+(?:=(")?[^;"\s]*\1)?)*$/;
const BACKTRACKING_LINK = `</a.css>${'; x=x'.repeat(40)}; "`;
const READABLE_LINK = '</a.css>; rel=preload; as=style';

/** What node sends of one link, its spaces and tabs around it left out as a field line's are. */
function nodeSends(link: string): string[] {
  const trimmed = link.replace(/^[ \t]+|[ \t]+$/g, '');
  return NODE_LINK_VALUE.test(trimmed) ? [trimmed] : [];
}

/** The Link values node is asked to send as a 103 when an origin's 103 carries `link`. */
function handedToNode(link: string | string[]): string[] {
  const sent: string[] = [];
  const res = {
    headersSent: false,
    writableEnded: false,
    writeEarlyHints(hints: { link: string | string[] }) {
      sent.push(...(typeof hints.link === 'string' ? [hints.link] : hints.link));
    },
  };
  const exchange = { req: { httpVersion: '1.1' }, res, route: undefined };
  relayEarlyHints(exchange as unknown as GatewayExchange, { link });
  return sent;
}

describe('relayEarlyHints', () => {
  it("never hands node a Link its check would backtrack on; the origin's readable lines still go", () => {
    expect(handedToNode(BACKTRACKING_LINK)).toEqual([]);
    expect(handedToNode([BACKTRACKING_LINK, READABLE_LINK])).toEqual([READABLE_LINK]);
  });

  it('hands node each link of a line that lists several (RFC 8288 §3: `Link: <a>; rel=x, <b>; rel=y`)', () => {
    expect(handedToNode('</a.css>; rel=preload; as=style, </b.js>;rel=preload')).toEqual([
      READABLE_LINK,
      '</b.js>;rel=preload',
    ]);
    expect(handedToNode(['</a,b.css>; rel=preload,,\t</c.js>; title="x,y"', '</d.js>'])).toEqual([
      '</a,b.css>; rel=preload',
      '</c.js>; title="x,y"',
      '</d.js>',
    ]);
    const backtrackingListed = `</a.css>${'; x=x'.repeat(40)}; title="a b", </b.js>; rel=preload`;
    expect(handedToNode(backtrackingListed)).toEqual(['</b.js>; rel=preload']);
  });

  it('hands node every link it would send, and none it would refuse', () => {
    const samples = [
      READABLE_LINK,
      '<https://cdn.example/a.js>;rel=preload;as=script',
      '</a.css> ; rel=preload ;as=style',
      '</font.woff2>; rel=preload; as=font; crossorigin',
      '</a.css>; title="x"; rel=preload',
      '</a.css>; title=""',
      '</a.css>; a==b; c=d=e',
      '</a.css>; ="x"',
      '</a.css>; a="x y"',
      '</a.css>; a="x',
      '</a.css>; a=x"',
      '</a.css>; a="x"b',
      '</a.css>; rel=preload ',
      '</a.css>;',
      '</a.css>; ;rel=preload',
      '</a.css>\u00a0; rel=preload',
      '</a\u00a0.css>; rel=preload',
      'no brackets',
      '<unclosed',
      '',
      '<>',
      BACKTRACKING_LINK.slice(0, 60),
    ];
    for (const sample of samples) {
      expect(handedToNode(sample), sample).toEqual(nodeSends(sample));
    }
  });

  it("agrees with node's check on every short Link of the characters that shape one", () => {
    const alphabet = ['a', 'a', '<', '>', 'a', '=', '"', ';', ' ', '\t', ',', '\u00a0'];
    let seed = 7;
    for (let n = 0; n < 3_000; n++) {
      let sample = ['', '<a>', '<a>;', '<a>; a='][n % 4]!;
      const length = n % 11;
      for (let i = 0; i < length; i++) {
        seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0;
        sample += alphabet[(seed >>> 16) % alphabet.length];
      }
      const handed = handedToNode(sample);
      for (const value of handed) expect(NODE_LINK_VALUE.test(value), JSON.stringify(value)).toBe(true);
      if (!sample.includes(',')) {
        expect(handed, JSON.stringify(sample)).toEqual(nodeSends(sample));
      }
    }
  });
});
