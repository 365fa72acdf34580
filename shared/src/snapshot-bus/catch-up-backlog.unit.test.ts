import { describe, expect, it } from 'vitest';
import { CatchUpBacklog } from './catch-up-backlog.js';
import { HEADER_VERSION } from './codec.js';

function record(key: string | null, version: string | undefined, value: string | null = `v${version}`) {
  return {
    key,
    value: value === null ? null : Buffer.from(value),
    headers: version === undefined ? {} : { [HEADER_VERSION]: version },
  };
}

describe('the catch-up backlog', () => {
  it('keeps each tenant’s newest two records, newest first, whatever order they were read in', () => {
    const backlog = new CatchUpBacklog();
    for (const version of ['3', '1', '7', '5', '6']) backlog.add(record('a', version));
    backlog.add(record('b', '2'));

    expect(backlog.take().map((kept) => [kept.key, kept.value?.toString()])).toEqual([
      ['a', 'v7'],
      ['a', 'v6'],
      ['b', 'v2'],
    ]);
    expect(backlog.take()).toEqual([]);
  });

  it('puts a tombstone before a snapshot of the same version, and keeps the first of two equal records', () => {
    const backlog = new CatchUpBacklog();
    backlog.add(record('a', '4', 'first'));
    backlog.add(record('a', '4', 'second'));
    backlog.add(record('a', '4', null));

    expect(backlog.take().map((kept) => kept.value?.toString() ?? null)).toEqual([null, 'first']);
  });

  it('keeps the previous version when the newest is read twice (a consumer restarted)', () => {
    const backlog = new CatchUpBacklog();
    backlog.add(record('a', '1'));
    backlog.add(record('a', '2'));
    backlog.add(record('a', '2'));

    expect(backlog.take().map((kept) => kept.value?.toString())).toEqual(['v2', 'v1']);
  });

  it('keeps every record without a tenant id or a version, to be reported as invalid', () => {
    const backlog = new CatchUpBacklog();
    backlog.add(record(null, '1'));
    backlog.add(record('a', undefined));
    backlog.add(record('a', 'x1'));
    backlog.add(record('a', '2'));
    backlog.add(record('a', '3'));

    expect(backlog.take().map((kept) => [kept.key, kept.headers[HEADER_VERSION]])).toEqual([
      ['a', '3'],
      ['a', '2'],
      [null, '1'],
      ['a', undefined],
      ['a', 'x1'],
    ]);
  });
});
