import { describe, expect, it } from 'vitest';
import {
  acceptedCodings,
  codingSetName,
  contentCodings,
  ENCODING_VARIANTS,
  requestAcceptedCodings,
} from './accept-encoding.js';

const accepted = (value: string) => codingSetName(acceptedCodings(value));

describe('which of br, compress, deflate, gzip and zstd an Accept-Encoding accepts (RFC 9110 §12.5.3)', () => {
  it('reads the codings that select a variant, sorted', () => {
    expect(accepted('gzip, deflate, br, zstd')).toBe('br,deflate,gzip,zstd');
    expect(accepted('gzip, deflate, br')).toBe('br,deflate,gzip');
    expect(accepted('gzip, compress')).toBe('compress,gzip');
    expect(accepted('gzip')).toBe('gzip');
    expect(accepted('identity')).toBe('');
  });

  it('ignores other codings, spacing, case, order and weights above 0', () => {
    expect(accepted('br;q=1, gzip, foo')).toBe(accepted('gzip, br'));
    expect(accepted(' BR ;  q=0.5 ,GZip,  x1')).toBe('br,gzip');
    expect(accepted('gzip, x1')).toBe(accepted('gzip, x2'));
    expect(accepted('gzip, identity;q=0, aes128gcm')).toBe(accepted('gzip'));
  });

  it('reads x-gzip as gzip and x-compress as compress', () => {
    expect(accepted('x-gzip')).toBe('gzip');
    expect(accepted('x-compress, deflate')).toBe('compress,deflate');
  });

  it('excludes a coding whose weight is zero, in any spelling of zero', () => {
    for (const q of ['q=0', 'q=0.', 'q=0.0', 'q=0.000', 'Q=0'])
      expect(accepted(`gzip;${q}, br`), q).toBe('br');
    expect(accepted('gzip;q=0.001')).toBe('gzip');
    expect(accepted('gzip;q=1.000')).toBe('gzip');
  });

  it('applies `*` to the codings not listed', () => {
    expect(accepted('*')).toBe('br,compress,deflate,gzip,zstd');
    expect(accepted('gzip;q=0, *')).toBe('br,compress,deflate,zstd');
    expect(accepted('*;q=0')).toBe('');
    expect(accepted('br, *;q=0')).toBe('br');
  });

  it('reads an empty value as accepting none of them', () => {
    expect(accepted('')).toBe('');
    expect(accepted(' , ,')).toBe('');
  });

  it('never accepts more than the client does: a repeated coding needs every entry, a doubtful weight accepts nothing', () => {
    expect(accepted('gzip, gzip;q=0')).toBe('');
    expect(accepted('x-gzip;q=0, gzip')).toBe('');
    for (const doubtful of ['q=2', 'q=0.5000', 'q=abc', 'q = 1', 'q=1;level=9', 'level=9', ''])
      expect(accepted(`gzip;${doubtful}, br`), doubtful).toBe('br');
    expect(accepted('*, *;q=0')).toBe('');
  });

  it('reads every spelling a CGI-style origin reads, accepting what all of them accept', () => {
    expect(requestAcceptedCodings({})).toBeUndefined();
    expect(requestAcceptedCodings({ 'accept-encoding': ['gzip', 'br'] })).toBe(acceptedCodings('gzip, br'));
    expect(requestAcceptedCodings({ accept_encoding: 'gzip' })).toBe(acceptedCodings('gzip'));
    expect(requestAcceptedCodings({ 'accept-encoding': 'gzip, br', accept_encoding: 'br, x1' })).toBe(
      acceptedCodings('br'),
    );
  });

  it('tells apart at most ENCODING_VARIANTS variants, whatever a client sends', () => {
    const names = new Set<string>();
    for (const value of ['', 'gzip, x1', 'br, gzip, zstd, deflate, compress, x-gzip, x-compress, *', 'a;q=1'])
      names.add(accepted(value));
    for (let bits = 0; bits < 64; bits++) names.add(codingSetName(bits));
    expect(names.size + 1).toBeLessThanOrEqual(ENCODING_VARIANTS);
  });

  it('reads a long value in one pass', () => {
    expect(accepted(`${'x, '.repeat(50_000)}gzip`)).toBe('gzip');
    expect(accepted(`gzip;${' '.repeat(100_000)}q=0`)).toBe('');
  });
});

describe('the codings a Content-Encoding applies', () => {
  it('reads br, compress (x-compress), deflate, gzip (x-gzip) and zstd, identity aside', () => {
    expect(codingSetName(contentCodings('gzip')!)).toBe('gzip');
    expect(codingSetName(contentCodings('X-Gzip, br')!)).toBe('br,gzip');
    expect(codingSetName(contentCodings('deflate')!)).toBe('deflate');
    expect(codingSetName(contentCodings('x-compress')!)).toBe('compress');
    expect(contentCodings('identity')).toBe(0);
  });

  it('is null for any other coding', () => {
    for (const other of ['aes128gcm', 'gzip, x-vendor', 'exi', '*'])
      expect(contentCodings(other), other).toBeNull();
  });
});
