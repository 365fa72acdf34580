import { describe, expect, it } from 'vitest';
import { connectionNamedHeaders, endToEndRequestHeaders } from './hop-by-hop.js';

describe('end-to-end request headers', () => {
  it('drops hop-by-hop fields and those named in Connection, keeping the rest', () => {
    expect(
      endToEndRequestHeaders({
        connection: 'keep-alive, X-Variant, x-other',
        'x-variant': 'fr',
        'x-other': '1',
        te: 'trailers',
        'accept-language': 'en',
      }),
    ).toEqual({ 'accept-language': 'en' });
  });

  it('returns the same object when there is nothing to drop', () => {
    const headers = { connection: 'keep-alive', accept: '*/*' };
    expect(endToEndRequestHeaders(headers)).toBe(headers);
  });

  it('reads Connection sent on several lines', () => {
    expect([...(connectionNamedHeaders(['close', 'X-A, x-b']) ?? [])]).toEqual(['x-a', 'x-b']);
    expect(connectionNamedHeaders('close')).toBeUndefined();
  });
});
