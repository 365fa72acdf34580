import { describe, expect, it } from 'vitest';
import { originReadings } from './path-readings.js';

describe('originReadings', () => {
  it.each([
    ['/', []],
    ['/api/admin', ['/api/admin/']],
    ['/api/admin/', ['/api/admin']],
    ['/api/admin;x=1/users', ['/api/admin/users', '/api/admin;x=1/users/', '/api/admin/users/']],
    ['/a/..;/b', ['/b', '/a/..;/b/', '/b/']],
    ['/a;x', ['/a', '/a;x/', '/a/']],
  ])('%s → %j', (path, readings) => {
    expect(originReadings(path)).toEqual(readings);
  });
});
