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
