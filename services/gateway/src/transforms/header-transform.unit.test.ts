import type { IncomingHttpHeaders } from 'node:http';
import { requestHeaderTransform, responseHeaderTransform } from '@vantageedge/shared/domain/route-policies';
import { describe, expect, it } from 'vitest';
import type { GatewayExchange } from '../pipeline/exchange.js';
import { applyHeaderTransform, compileHeaderTransform } from './header-transform.js';

const exchange = {} as GatewayExchange;

/**
 * Routes recorded before commands refused the names of Object.prototype's members (`constructor`) as
 * transform keys still load. Header objects inherit from Object.prototype (node's request headers, the
 * origin's response headers), so a name is only "already there" when the message carries it.
 */
describe('header transforms of routes stored with a constructor entry', () => {
  it('regression: add on a header the request does not carry writes only the route’s value', () => {
    const stored = requestHeaderTransform.parse({ add: { constructor: 'route-value' } });
    const headers: IncomingHttpHeaders = { accept: 'text/html' };
    applyHeaderTransform(compileHeaderTransform(stored)!, headers, exchange);
    expect(Object.hasOwn(headers, 'constructor')).toBe(true);
    expect(headers['constructor']).toBe('route-value');
  });

  it('add keeps a line the message carries, as for any other header', () => {
    const stored = responseHeaderTransform.parse({ add: { constructor: 'route-value' } });
    const headers: Record<string, string | string[]> = { constructor: 'origin-value' };
    applyHeaderTransform(compileHeaderTransform(stored)!, headers, exchange);
    expect(headers['constructor']).toEqual(['origin-value', 'route-value']);
  });
});
