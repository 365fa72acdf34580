import type { RequestHandler } from 'express';
import { callerOf } from '../auth/caller-middleware.js';
import { limitRequestsInFlightPer } from './in-flight-limit.js';

/**
 * Every caller's /api/v1 requests share the replica's one PostgreSQL pool (20 connections). A request
 * holds a connection while its statements run, so a caller with as many slow reads in flight as the
 * pool has connections would make every other tenant's admin wait for one: past `max` of its own
 * requests in flight a caller is answered 429 at once, before any query.
 */
export const DEFAULT_USER_REQUESTS_IN_FLIGHT = 8;

export function limitUserRequestsInFlight(max: number): RequestHandler {
  return limitRequestsInFlightPer((res) => callerOf(res).userId, max, {
    relation: 'of',
    noun: 'caller',
    field: 'user_requests_in_flight',
    setting: 'CONTROL_PLANE_USER_REQUESTS_IN_FLIGHT',
  });
}
