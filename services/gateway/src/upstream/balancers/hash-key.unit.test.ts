import { loadBalancing } from '@vantageedge/shared/domain/gateway-config';
import { cookieValue } from '@vantageedge/shared/http/header-values';
import { describe, expect, it } from 'vitest';
import type { PickContext } from '../types.js';
import { compileHashKey } from './hash-key.js';

const request = (headers: PickContext['headers'] = {}): PickContext => ({
  clientIp: '203.0.113.9',
  path: '/orders/42',
  headers,
});
const keyOf = (config: Record<string, unknown>) =>
  compileHashKey(loadBalancing.parse({ algorithm: 'consistent_hash', ...config }));

describe('consistent-hash key', () => {
  it('hashes on client IP by default and on the path when asked', () => {
    expect(keyOf({})?.(request())).toBe('203.0.113.9');
    expect(keyOf({ hash_on: 'path' })?.(request())).toBe('/orders/42');
  });

  it('reads a header case-insensitively and falls back to the client IP when it is missing', () => {
    const key = keyOf({ hash_on: 'header', hash_key: 'X-User-Id' });
    expect(key?.(request({ 'x-user-id': 'u-1' }))).toBe('u-1');
    expect(key?.(request({ 'x-user-id': ['u-2', 'u-3'] }))).toBe('u-2');
    expect(key?.(request())).toBe('203.0.113.9');
  });

  it('reads Host as the host the request is for, over HTTP/2 too (its :authority, no Host line)', () => {
    const key = keyOf({ hash_on: 'header', hash_key: 'Host' });
    expect(key?.(request({ host: 'a.example' }))).toBe('a.example');
    expect(key?.(request({ ':authority': 'a.example' }))).toBe('a.example');
    expect(key?.(request())).toBe('203.0.113.9');
  });

  it('reads a cookie and falls back to the client IP', () => {
    const key = keyOf({ hash_on: 'cookie', hash_key: 'session' });
    expect(key?.(request({ cookie: 'theme=dark; session=abc123; x=1' }))).toBe('abc123');
    expect(key?.(request({ cookie: 'theme=dark' }))).toBe('203.0.113.9');
  });

  it('is undefined for header or cookie hashing without a hash_key', () => {
    expect(keyOf({ hash_on: 'header' })).toBeUndefined();
    expect(keyOf({ hash_on: 'cookie' })).toBeUndefined();
  });

  it('is undefined for a stored hash_key naming a header the gateway writes, in any spelling', () => {
    for (const hash_key of ['X-Real-IP', 'x_forwarded_for', 'X-VantageEdge-User-Id', 'x-request-id']) {
      expect(keyOf({ hash_on: 'header', hash_key }), hash_key).toBeUndefined();
    }
    // A cookie of that name is the client's own.
    expect(keyOf({ hash_on: 'cookie', hash_key: 'x-real-ip' })?.(request({ cookie: 'x-real-ip=a' }))).toBe(
      'a',
    );
  });
});

describe('cookieValue', () => {
  it('matches whole cookie names only', () => {
    expect(cookieValue('xsession=1; session=2', 'session')).toBe('2');
    expect(cookieValue('session=1', 'sess')).toBeUndefined();
    expect(cookieValue('session=', 'session')).toBeUndefined();
    expect(cookieValue('a=1;session=v', 'session')).toBe('v');
  });

  it('drops only the spaces and tabs around a value: a UTF-8 `à` read as Latin-1 ends in U+00A0', () => {
    expect(cookieValue('lang= \tvoil\u00c3\u00a0\t ; a=1', 'lang')).toBe('voil\u00c3\u00a0');
    expect(cookieValue('lang=\u00a0', 'lang')).toBe('\u00a0');
    expect(cookieValue('lang= \t ', 'lang')).toBeUndefined();
  });
});
