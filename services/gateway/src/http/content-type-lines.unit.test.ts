import { describe, expect, it } from 'vitest';
import { contentTypeBrowsersRead } from './content-type-lines.js';

describe('contentTypeBrowsersRead', () => {
  it('takes the last media type of the lines, and of the values a line lists', () => {
    expect(contentTypeBrowsersRead(['text/plain', 'text/html'])).toBe('text/html');
    expect(contentTypeBrowsersRead(['text/plain, application/json', 'bogus'])).toBe('application/json');
  });

  it('keeps a comma inside a quoted parameter value within its value', () => {
    expect(contentTypeBrowsersRead(['text/plain', 'text/html;charset="a,b"'])).toBe(
      'text/html;charset="a,b"',
    );
  });

  it('keeps an earlier charset for the same type, and drops it for another type', () => {
    expect(contentTypeBrowsersRead(['text/html;charset=gbk', 'text/html'])).toBe('text/html;charset=gbk');
    expect(contentTypeBrowsersRead(['text/html;charset=gbk', 'text/plain'])).toBe('text/plain');
  });

  it('reads nothing when no value is a media type, or only the wildcard', () => {
    expect(contentTypeBrowsersRead(['bogus', '*/*', ''])).toBeUndefined();
  });
});

// An origin's Content-Type lines are its to write (up to the size of a head): a value with a long run of
// spaces inside went through /[\t ]+$/, and util.MIMEType, each of which backtracks over the run from
// every space (quadratic: two 8 KiB lines held a replica's event loop for about a second, on every
// HTTP/2 answer and cache HIT). Linear work reads 40,000 spaces in about a millisecond.
describe('contentTypeBrowsersRead on an origin’s hostile lines', () => {
  it('reads long runs of spaces inside values in linear time', () => {
    const spaces = ' '.repeat(40_000);
    const started = performance.now();
    expect(contentTypeBrowsersRead([`text/plain;${spaces}charset=utf-8`, `text/html${spaces}x`])).toBe(
      'text/plain;charset=utf-8',
    );
    expect(contentTypeBrowsersRead([`text/html${spaces};charset=utf-8`, 'text/html'])).toBe(
      'text/html;charset=utf-8',
    );
    expect(performance.now() - started).toBeLessThan(500);
  });
});
