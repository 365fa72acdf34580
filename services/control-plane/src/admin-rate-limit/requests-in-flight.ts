import type { RequestHandler } from 'express';
import { callerOf } from '../auth/caller-middleware.js';
import { rateLimited } from '../domain/errors.js';
import { createInFlightCounter, releaseWhenAnswered } from './in-flight-counter.js';

/**
 * Every caller's /api/v1 requests share the replica's one PostgreSQL pool (20 connections). A request
 * holds a connection while its statements run, so a caller with as many slow reads in flight as the
 * pool has connections would make every other tenant's admin wait for one: past `max` of its own
 * requests in flight a caller is answered 429 at once, before any query.
 */
export const DEFAULT_USER_REQUESTS_IN_FLIGHT = 8;

export function limitUserRequestsInFlight(max: number): RequestHandler {
  const running = createInFlightCounter(max);
  return (_req, res, next) => {
    if (max === 0) {
      next();
      return;
    }
    const release = running.enter(callerOf(res).userId);
    if (release === null) {
      throw rateLimited(
        'admin_rate_limited',
        'too many requests of this caller running at once: retry in 1 s',
        'user_requests_in_flight',
        `at most ${max} requests of one caller at once (CONTROL_PLANE_USER_REQUESTS_IN_FLIGHT)`,
        1,
      );
    }
    releaseWhenAnswered(res, release);
    next();
  };
}
