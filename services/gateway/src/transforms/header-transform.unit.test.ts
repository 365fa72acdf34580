import type { IncomingHttpHeaders } from 'node:http';
import { requestHeaderTransform, responseHeaderTransform } from '@vantageedge/shared/domain/route-policies';
import { describe, expect, it } from 'vitest';
import type { GatewayExchange } from '../pipeline/exchange.js';
import { applyHeaderTransform, compileHeaderTransform, withPreparedSets } from './header-transform.js';

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

/**
 * A response transform's fixed `set` values go out as prepared head lines on routes without a cache:
 * the bytes node would write for them, checked once, and only for headers node need not look into.
 */
describe('prepared response header writes', () => {
  const compiled = (set: Record<string, string>, add: Record<string, string> = {}) =>
    compileHeaderTransform(responseHeaderTransform.parse({ set, add }))!;

  it('prepares the fixed values as the lines node writes for them', () => {
    const { prepared, rest } = withPreparedSets(compiled({ 'X-Served-By': 'vantageedge', 'x-env': 'prod' }));
    expect(prepared.map((header) => header.line)).toEqual([
      'x-served-by: vantageedge\r\n',
      'x-env: prod\r\n',
    ]);
    expect(rest).toBeNull();
  });

  it('leaves to the transform Vary, a header `add` writes too, and values with request variables', () => {
    const transform = compiled(
      // biome-ignore lint/suspicious/noTemplateCurlyInString: ${…} is the route policies' value-template syntax
      { vary: 'Accept', 'x-both': 'set', 'x-from': '${client_ip}', 'x-fixed': 'one' },
      { 'x-both': 'added' },
    );
    const { prepared, rest } = withPreparedSets(transform);
    expect(prepared.map((header) => header.key)).toEqual(['x-fixed']);
    expect(rest!.setNames).toEqual(['vary', 'x-both', 'x-from']);
    expect(rest!.written).toEqual(['vary', 'x-both', 'x-from']);
    const headers: Record<string, string | string[]> = { 'x-both': 'origin' };
    applyHeaderTransform(rest!, headers, { clientIp: '192.0.2.7' } as GatewayExchange);
    expect(headers).toEqual({ vary: 'Accept', 'x-both': ['set', 'added'], 'x-from': '192.0.2.7' });
  });

  it('leaves to node the headers it reads as it writes the head', () => {
    const { prepared } = withPreparedSets(
      compiled({ 'content-disposition': 'attachment', 'x-fixed': 'one' }),
    );
    expect(prepared.map((header) => header.key)).toEqual(['x-fixed']);
  });
});
