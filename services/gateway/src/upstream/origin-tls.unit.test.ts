import { originTls } from '@vantageedge/shared/domain/gateway-config';
import { describe, expect, it } from 'vitest';
import { compileOriginTls, DEFAULT_ORIGIN_TLS, originTlsErrorCode, serverNameFor } from './origin-tls.js';

const settings = (tls: Record<string, unknown>) => compileOriginTls(originTls.parse(tls));

describe('an origin’s TLS settings, compiled', () => {
  it('are the shared defaults without settings of its own, and for an origin recorded before they existed', () => {
    expect(settings({})).toBe(DEFAULT_ORIGIN_TLS);
    expect(compileOriginTls(undefined)).toBe(DEFAULT_ORIGIN_TLS);
    expect(DEFAULT_ORIGIN_TLS.connectOptions.rejectUnauthorized).toBe(true);
  });

  it('tell settings apart by key, so connections never share a connector (or TLS sessions) across them', () => {
    const keys = [
      settings({}).key,
      settings({ verify: false }).key,
      settings({ server_name: 'backend.internal' }).key,
      settings({ verify: false, server_name: 'backend.internal' }).key,
      settings({ verify_depth: 1 }).key,
      settings({ verify_depth: 2 }).key,
    ];
    expect(new Set(keys).size).toBe(keys.length);
    expect(settings({ verify: false }).key).toBe(settings({ verify: false }).key);
  });

  it('send the target URL’s host as SNI, or server_name; never an IP address', () => {
    expect(serverNameFor(DEFAULT_ORIGIN_TLS, 'api.example.com')).toBe('api.example.com');
    expect(serverNameFor(DEFAULT_ORIGIN_TLS, '10.0.0.5')).toBeUndefined();
    expect(serverNameFor(DEFAULT_ORIGIN_TLS, '::1')).toBeUndefined();
    expect(serverNameFor(settings({ server_name: 'backend.internal' }), '10.0.0.5')).toBe('backend.internal');
  });

  it('recognise certificate and handshake failures, also as the cause of undici’s error', () => {
    const expired = Object.assign(new Error('certificate has expired'), { code: 'CERT_HAS_EXPIRED' });
    expect(originTlsErrorCode(expired)).toBe('CERT_HAS_EXPIRED');
    expect(originTlsErrorCode(new Error('fetch failed', { cause: expired }))).toBe('CERT_HAS_EXPIRED');
    expect(originTlsErrorCode({ code: 'ERR_TLS_CERT_ALTNAME_INVALID' })).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
    expect(originTlsErrorCode({ code: 'ERR_SSL_WRONG_VERSION_NUMBER' })).toBe('ERR_SSL_WRONG_VERSION_NUMBER');
    expect(originTlsErrorCode({ code: 'ECONNREFUSED' })).toBeUndefined();
    expect(originTlsErrorCode(null)).toBeUndefined();
  });
});
