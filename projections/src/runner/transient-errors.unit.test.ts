import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { CheckpointMovedError } from './checkpoint.js';
import { isTransientError } from './transient-errors.js';

const withCode = (code: string, message = 'failed') => Object.assign(new Error(message), { code });

describe('isTransientError: retried, never parked', () => {
  it.each([
    ['08006 connection failure', withCode('08006')],
    ['53300 too many connections', withCode('53300')],
    ['57P01 admin shutdown', withCode('57P01')],
    ['57014 query cancelled', withCode('57014')],
    ['58030 I/O error', withCode('58030')],
    ['40001 serialization failure', withCode('40001')],
    ['40P01 deadlock', withCode('40P01')],
    ['42P01 undefined table (a release before its migration)', withCode('42P01')],
    ['42703 undefined column', withCode('42703')],
    ['ECONNREFUSED', withCode('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:55432')],
    ['ECONNRESET', withCode('ECONNRESET')],
    ['pg: connection terminated', new Error('Connection terminated unexpectedly')],
    ['pg: not queryable', new Error('Client has encountered a connection error and is not queryable')],
    ['pg: pool timeout', new Error('timeout exceeded when trying to connect')],
    ['a moved checkpoint', new CheckpointMovedError('p', 1n, 2n)],
    ['a cause that is', new Error('batch failed', { cause: withCode('57P01') })],
    ['node: every address refused', new AggregateError([withCode('ECONNREFUSED')], '')],
  ])('%s', (_, error) => {
    expect(isTransientError(error)).toBe(true);
  });
});

describe('isTransientError: the event’s fault, parked after a few attempts', () => {
  it.each([
    ['22008 datetime out of range', withCode('22008')],
    ['22P02 invalid text representation', withCode('22P02')],
    ['23505 unique violation', withCode('23505')],
    ['40002 integrity constraint violation (not a serialization failure)', withCode('40002')],
    ['a TypeError in the fold', new TypeError("Cannot read properties of null (reading '0')")],
    ['a thrown string', 'nope'],
    ['a code that is neither SQLSTATE nor socket', withCode('ERR_INVALID_ARG_TYPE')],
  ])('%s', (_, error) => {
    expect(isTransientError(error)).toBe(false);
  });
});

describe('isTransientError: text that only quotes a lost connection', () => {
  it('node-postgres’ own messages are transient; an error quoting a tenant’s text is not (it would be retried for ever)', () => {
    for (const message of [
      'Connection terminated',
      'Connection terminated due to connection timeout',
      'Client was closed and is not queryable',
    ]) {
      expect(isTransientError(new Error(message)), message).toBe(true);
    }
    // What the snapshot fold reports for event data with a member the snapshot schema does not know.
    const refused = z
      .strictObject({ requests_per_second: z.number() })
      .safeParse({ requests_per_second: 1, 'Connection terminated unexpectedly': true });
    expect(refused.error?.message).toContain('Connection terminated unexpectedly');
    expect(isTransientError(refused.error)).toBe(false);
    expect(isTransientError(new Error('route "Client was closed and is not queryable" refused'))).toBe(false);
  });
});
