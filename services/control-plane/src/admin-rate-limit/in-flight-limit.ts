import type { RequestHandler, Response } from 'express';
import { rateLimited } from '../domain/errors.js';
import { createInFlightCounter, readersShareOf, releaseWhenAnswered } from './in-flight-counter.js';

/** How a limit on /api/v1 requests in flight per key is named in its 429. */
export interface InFlightLimitNames {
  /** What one key is, as the refusal says it: 'of' a caller, 'on' a tenant. */
  readonly relation: 'of' | 'on';
  readonly noun: string;
  /** The refusal's field. */
  readonly field: string;
  /** The setting of `max`. */
  readonly setting: string;
}

/**
 * Takes a place of `key` for a request: the function that gives it back, or a 429 admin_rate_limited
 * (retry in 1 s) naming the limit when `key` has `max` requests running.
 */
export function createInFlightLimit(max: number, names: InFlightLimitNames): (key: string) => () => void {
  const running = createInFlightCounter(max);
  const { relation, noun, field, setting } = names;
  return (key) => {
    const release = running.enter(key);
    if (release === null) {
      throw rateLimited(
        'admin_rate_limited',
        `too many requests ${relation} this ${noun} running at once: retry in 1 s`,
        field,
        `at most ${max} requests ${relation} one ${noun} at once (${setting})`,
        1,
      );
    }
    return release;
  };
}

/**
 * `enter` held to the read-only callers' share of `max` per key (`readersShareOf`): takes a place of
 * the share, then one of `enter`'s, or a 429 naming `field` and `issue` (given the share) when the share
 * is full. The function it answers gives both back.
 */
export function enterWithinReadersShare(
  enter: (key: string) => () => void,
  max: number,
  refusal: { message: string; field: string; issue: (share: number) => string },
): (key: string) => () => void {
  const share = readersShareOf(max);
  const readers = createInFlightCounter(share);
  return (key) => {
    const leaveShare = readers.enter(key);
    if (leaveShare === null) {
      throw rateLimited('admin_rate_limited', refusal.message, refusal.field, refusal.issue(share), 1);
    }
    try {
      const leave = enter(key);
      return () => {
        leave();
        leaveShare();
      };
    } catch (error) {
      leaveShare();
      throw error;
    }
  };
}

/**
 * A middleware holding each request to at most `max` running at once per `keyOf` (a request with no
 * key is not counted), from when it runs until its handler answers; `max` 0 turns the limit off.
 */
export function limitRequestsInFlightPer(
  keyOf: (res: Response) => string | null,
  max: number,
  names: InFlightLimitNames,
): RequestHandler {
  const enter = createInFlightLimit(max, names);
  return (_req, res, next) => {
    const key = max === 0 ? null : keyOf(res);
    if (key === null) {
      next();
      return;
    }
    releaseWhenAnswered(res, enter(key));
    next();
  };
}
