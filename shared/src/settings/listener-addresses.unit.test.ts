import { describe, expect, it } from 'vitest';
import { assertDistinctListeners } from './listener-addresses.js';

const traffic = (host: string, port: number) => ({ host, port, portSetting: 'TRAFFIC_PORT' });
const admin = (host: string, port: number) => ({ host, port, portSetting: 'ADMIN_PORT' });

describe('assertDistinctListeners', () => {
  it('refuses two listeners on one address, naming the later port setting', () => {
    for (const [a, b] of [
      ['127.0.0.1', '127.0.0.1'],
      ['0.0.0.0', '127.0.0.1'],
      ['10.0.0.5', '0.0.0.0'],
      ['::', '127.0.0.1'],
      ['::1', '::'],
    ] as const)
      expect(() => assertDistinctListeners([traffic(a, 8000), admin(b, 8000)]), `${a} ${b}`).toThrow(
        /ADMIN_PORT.*must differ from TRAFFIC_PORT/,
      );
  });

  it('takes the same port on addresses that do not overlap, and port 0 (the kernel picks) anywhere', () => {
    for (const [a, b] of [
      ['10.0.0.5', '127.0.0.1'],
      ['::1', '127.0.0.1'],
      ['0.0.0.0', '::1'],
    ] as const)
      expect(() => assertDistinctListeners([traffic(a, 8000), admin(b, 8000)]), `${a} ${b}`).not.toThrow();
    expect(() => assertDistinctListeners([traffic('0.0.0.0', 0), admin('0.0.0.0', 0)])).not.toThrow();
  });
});
