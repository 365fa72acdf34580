import { StoreUnavailableError } from '@vantageedge/shared/postgres/lost-connections';
import { describe, expect, it } from 'vitest';
import { ERROR_STATUS, toApiError } from './errors.js';

describe('PostgreSQL unavailable → HTTP', () => {
  it('is 503 store_unavailable with Retry-After, never a 500', () => {
    const answer = toApiError(new StoreUnavailableError('connect ECONNREFUSED 127.0.0.1:5432'));
    expect(answer).toMatchObject({
      status: 503,
      code: 'store_unavailable',
      message: expect.stringMatching(/cannot be reached/),
      details: [],
      headers: { 'Retry-After': '2' },
    });
    expect(answer?.message).not.toContain('ECONNREFUSED'); // no address or driver text for the client
    expect(ERROR_STATUS.store_unavailable).toBe(503);
  });

  it('says so when a change may have been stored without its answer', () => {
    const answer = toApiError(
      new StoreUnavailableError('Connection terminated unexpectedly', { outcomeUnknown: true }),
    );
    expect(answer).toMatchObject({ status: 503, code: 'store_unavailable' });
    expect(answer?.message).toMatch(/may or may not have been applied.*same Idempotency-Key/);
    expect(ERROR_STATUS.idempotency_answer_lost).toBe(409);
  });
});
