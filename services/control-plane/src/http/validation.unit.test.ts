import { describe, expect, it } from 'vitest';
import { configDocument } from '../schemas/config-document.js';
import { ApiError, errorBody, MAX_ERROR_DETAILS } from './errors.js';
import { parseBody } from './validation.js';

function refusal(body: unknown): ApiError {
  try {
    parseBody(configDocument, body);
  } catch (error) {
    if (error instanceof ApiError) return error;
    throw error;
  }
  throw new Error('the body was accepted');
}

describe('validation problems', () => {
  it('names each bad field of a body with few of them', () => {
    const { details } = refusal({ tenant: { name: 'Acme' }, routes: [{}], colour: 'red' });
    expect(details).toContainEqual({ field: 'colour', issue: 'is not a known field' });
    expect(details.some((detail) => detail.field.startsWith('routes.0.'))).toBe(true);
    expect(details.length).toBeLessThan(MAX_ERROR_DETAILS);
  });

  it.each([
    // 60 KiB of document, two problems a route.
    [
      '20,000 empty routes',
      { tenant: { name: 'Acme' }, routes: Array.from({ length: 20_000 }, () => ({})) },
      40_000,
    ],
    [
      'one route of 100,000 unknown fields',
      {
        tenant: { name: 'Acme' },
        routes: [Object.fromEntries(Array.from({ length: 100_000 }, (_, i) => [`k${i}`, 0]))],
      },
      100_000,
    ],
  ])('lists the first problems of %s, and counts the rest', (_label, body, atLeast) => {
    const { details } = refusal(body);
    expect(details).toHaveLength(MAX_ERROR_DETAILS);
    const last = details.at(-1);
    expect(last?.field).toBe('body');
    const more = Number(/^and (\d+) more problems, not listed$/.exec(last?.issue ?? '')?.[1]);
    expect(more + MAX_ERROR_DETAILS - 1).toBeGreaterThanOrEqual(atLeast);
  });

  it('answers any error with at most the listed problems', () => {
    const many = Array.from({ length: 5_000 }, (_, i) => ({
      field: `routes.${i}.origin`,
      issue: 'names no origin',
    }));
    const { details } = errorBody('validation_failed', 'the request is not valid', many).error;
    expect(details).toHaveLength(MAX_ERROR_DETAILS);
    expect(details.slice(0, -1)).toEqual(many.slice(0, MAX_ERROR_DETAILS - 1));
    expect(details.at(-1)).toEqual({
      field: 'body',
      issue: `and ${5_000 - MAX_ERROR_DETAILS + 1} more problems, not listed`,
    });
  });
});
