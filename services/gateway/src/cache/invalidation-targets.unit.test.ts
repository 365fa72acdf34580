import { describe, expect, it } from 'vitest';
import { invalidatesOnStatus, invalidationTargets, isUnsafeMethod } from './invalidation-targets.js';

const request = { authority: 'shop.example.com', path: '/orders/5', query: '?page=2' };
const targets = (headers: Record<string, string | string[]>, encodedSlashes: 'reject' | 'keep' = 'reject') =>
  invalidationTargets(request, headers, encodedSlashes);

describe('which URIs an unsafe method’s response invalidates (RFC 9111 §4.4)', () => {
  it('takes Location and Content-Location, each once', () => {
    expect(targets({ location: '/orders/7', 'content-location': '/orders/7/receipt' })).toEqual([
      { path: '/orders/7', query: '' },
      { path: '/orders/7/receipt', query: '' },
    ]);
    expect(targets({ location: '/orders/7', 'content-location': '/orders/7' })).toEqual([
      { path: '/orders/7', query: '' },
    ]);
    expect(targets({ Location: '/orders/7?view=full' })).toEqual([
      { path: '/orders/7', query: '?view=full' },
    ]);
  });

  it('resolves relative references against the request URI', () => {
    expect(targets({ location: '7' })).toEqual([{ path: '/orders/7', query: '' }]);
    expect(targets({ location: '../invoices/1' })).toEqual([{ path: '/invoices/1', query: '' }]);
    expect(targets({ location: '?page=3' })).toEqual([{ path: '/orders/5', query: '?page=3' }]);
    expect(targets({ location: '//shop.example.com/orders/8' })).toEqual([{ path: '/orders/8', query: '' }]);
  });

  it('keeps absolute URIs on the request’s host, whatever the scheme, port or letter case', () => {
    expect(targets({ location: 'https://SHOP.example.com:8443/orders/7' })).toEqual([
      { path: '/orders/7', query: '' },
    ]);
    const withPort = invalidationTargets(
      { ...request, authority: 'shop.example.com:8080' },
      { location: 'http://shop.example.com/orders/7' },
      'reject',
    );
    expect(withPort).toEqual([{ path: '/orders/7', query: '' }]);
  });

  it('ignores another host, other schemes, unparseable values and a request without a host', () => {
    expect(targets({ location: 'http://evil.example.com/orders/7' })).toEqual([]);
    expect(targets({ location: '//shop.example.com.evil.example/orders/7' })).toEqual([]);
    expect(targets({ location: 'http://shop.example.com@evil.example/orders/7' })).toEqual([]);
    expect(targets({ 'content-location': 'mailto:orders@shop.example.com' })).toEqual([]);
    expect(targets({ location: 'http://[not a host/orders/7' })).toEqual([]);
    expect(targets({ location: ['/orders/7', '/orders/8'] })).toEqual([]); // two values: neither is the URI
    expect(
      invalidationTargets({ ...request, authority: undefined }, { location: '/orders/7' }, 'reject'),
    ).toEqual([]);
  });

  it('normalises paths the way request paths are before routing', () => {
    expect(targets({ location: '/orders//7/./' })).toEqual([{ path: '/orders/7/', query: '' }]);
    expect(targets({ location: '/%6Frders/%7e7' })).toEqual([{ path: '/orders/~7', query: '' }]);
    expect(targets({ location: '/orders/a%2Fb' })).toEqual([]); // a request with %2F is refused too
    expect(targets({ location: '/orders/a%2Fb' }, 'keep')).toEqual([{ path: '/orders/a%2Fb', query: '' }]);
  });

  it('counts every method not known to be safe as unsafe, and only 2xx/3xx responses', () => {
    for (const method of ['POST', 'PUT', 'PATCH', 'DELETE', 'PURGE', 'MKCOL'])
      expect(isUnsafeMethod(method)).toBe(true);
    for (const method of ['GET', 'HEAD', 'OPTIONS', 'TRACE']) expect(isUnsafeMethod(method)).toBe(false);
    expect([200, 201, 204, 303, 399].every(invalidatesOnStatus)).toBe(true);
    expect([100, 400, 404, 409, 500, 503].some(invalidatesOnStatus)).toBe(false);
  });
});
