import type { RequestHandler } from 'express';
import { callerOf } from '../auth/caller-middleware.js';
import { rateLimited } from '../domain/errors.js';

/**
 * Every caller's /api/v1 requests share the replica's one PostgreSQL pool (20 connections). A request
 * holds a connection while its statements run, so a caller with as many slow reads in flight as the
 * pool has connections would make every other tenant's admin wait for one: past `max` of its own
 * requests in flight a caller is answered 429 at once, before any query.
 */
export const DEFAULT_USER_REQUESTS_IN_FLIGHT = 8;

export function limitUserRequestsInFlight(max: number): RequestHandler {
  const running = new Map<string, number>();
  return (_req, res, next) => {
    if (max === 0) {
      next();
      return;
    }
    const userId = callerOf(res).userId;
    const count = running.get(userId) ?? 0;
    if (count >= max) {
      throw rateLimited(
        'admin_rate_limited',
        'too many requests of this caller running at once: retry in 1 s',
        'user_requests_in_flight',
        `at most ${max} requests of one caller at once (CONTROL_PLANE_USER_REQUESTS_IN_FLIGHT)`,
        1,
      );
    }
    running.set(userId, count + 1);
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      const left = (running.get(userId) ?? 1) - 1;
      if (left === 0) running.delete(userId);
      else running.set(userId, left);
    };
    // Counted until the handler answers, not until the client leaves: its statements run on (holding
    // pooled connections) after a 'close', so a caller closing its connections at once could otherwise
    // keep any number of them running. node emits no 'finish' for an answer to a client gone.
    const answer = res.end;
    res.end = function (this: typeof res, ...args: Parameters<typeof res.end>) {
      end();
      return answer.apply(this, args);
    } as typeof res.end;
    res.on('close', () => {
      if (res.headersSent) end(); // answered, then cut off without end() (express's error after the head)
    });
    next();
  };
}
