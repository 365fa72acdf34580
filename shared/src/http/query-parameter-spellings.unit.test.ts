import { describe, expect, it } from 'vitest';
import { dottedParameterKey, NamedParameters } from './query-parameter-spellings.js';

/** A route's named parameters that counts how often a request's names are looked up in it. */
class CountedLookups<T> extends Map<string, T> {
  lookups = 0;
  override get(key: string): T | undefined {
    this.lookups++;
    return super.get(key);
  }
}

describe('NamedParameters', () => {
  it('finds the entry a bracketed spelling extends', () => {
    const named = new NamedParameters(
      new Map([
        ['role', 'role entry'],
        ['filter[a]', 'filter[a] entry'],
      ]),
    );
    expect(named.entryOf('role[]')).toBe('role entry');
    expect(named.entryOf('role[0][x]')).toBe('role entry');
    expect(named.entryOf('filter[a][b]')).toBe('filter[a] entry');
    expect(named.entryOf('filter[b]')).toBeUndefined();
    expect(named.entryOf('roles[]')).toBeUndefined();
  });

  // A query parameter's name is the client's: one name of 10,000 `[` was looked up once per `[`, each
  // lookup hashing the whole name again (quadratic: a 14 KB query cost a replica 40 times a plain one).
  it('looks a name up only as prefixes no longer than the longest named key, however many `[` it has', () => {
    const byKey = new CountedLookups([
      ['role', 'role entry'],
      ['filter', 'filter entry'],
    ]);
    const named = new NamedParameters(byKey);
    expect(named.entryOf(`role[]${'['.repeat(10_000)}`)).toBe('role entry');
    expect(byKey.lookups).toBeLessThanOrEqual('filter'.length + 1);

    byKey.lookups = 0;
    expect(named.entryOf(`other[]${'['.repeat(10_000)}`)).toBeUndefined();
    expect(byKey.lookups).toBeLessThanOrEqual('filter'.length + 1);
  });
});

describe('dottedParameterKey', () => {
  it('reads a `.` outside brackets as the key it makes, in names of many `.` and `]x` too', () => {
    const named = new NamedParameters(new Map([['user', 'user entry']]));
    expect(named.entryOf(`user${'.a'.repeat(50_000)}`)).toBe('user entry');
    expect(named.entryOf(`user[a]${'x]'.repeat(50_000)}`)).toBe('user entry');
    expect(dottedParameterKey('A.b[0].C')).toBe('a[b][0][c]');
    expect(dottedParameterKey('a[b.c]')).toBeUndefined();
    expect(dottedParameterKey('plain')).toBeUndefined();
  });
});
