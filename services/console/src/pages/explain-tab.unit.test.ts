import { describe, expect, it } from 'vitest';
import { parseHeaders } from './explain-tab.js';

/**
 * The headers the explain tab sends for what the viewer typed: the request as a client would send it,
 * so that the control plane reads it as the gateways would (as the CLI's `explain -H` does).
 */
describe('explain tab headers', () => {
  // Regression: the lines went into a plain object, so a header typed on two lines kept only its last
  // line (a repeated X-Api-Key, which the gateways refuse, was explained as the second key), and one
  // named __proto__ vanished.
  it('keeps every line of a header typed on several lines, in order', () => {
    expect(parseHeaders('X-Api-Key: first\nAccept: a\nx-api-key: second')).toEqual({
      'x-api-key': ['first', 'second'],
      accept: 'a',
    });
  });

  it('reads a header named like a member every object has (Constructor, __proto__) as any other', () => {
    expect(JSON.stringify(parseHeaders('Constructor: a\nconstructor: b'))).toBe('{"constructor":["a","b"]}');
    expect(JSON.stringify(parseHeaders('__proto__: a\nX-A: 1'))).toBe('{"__proto__":"a","x-a":"1"}');
  });

  it('ignores lines without a name', () => {
    expect(parseHeaders('no colon\n: value\n\nX-A: 1')).toEqual({ 'x-a': '1' });
  });
});
