import { CheckpointMovedError } from './checkpoint.js';

/**
 * Whether a projection failed for a reason outside the events it was applying, which retrying the
 * same events later fixes: the projector then restarts from its checkpoint and parks nothing. Any
 * other error is the event's (a bug, data the fold cannot apply, a value PostgreSQL refuses).
 */
export function isTransientError(error: unknown): boolean {
  if (error instanceof CheckpointMovedError) return true;
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && SQLSTATE.test(code)) return isTransientSqlState(code);
  if (typeof code === 'string' && SOCKET_ERROR_CODES.has(code)) return true;
  if (CONNECTION_MESSAGE.test(error.message)) return true;
  if (error instanceof AggregateError && error.errors.some(isTransientError)) return true;
  return error.cause !== undefined && isTransientError(error.cause);
}

const SQLSTATE = /^[0-9A-Z]{5}$/;

/**
 * Classes 08 (connection), 53 (insufficient resources), 57 (operator intervention: admin shutdown,
 * query cancelled, cannot connect now), 58 (system error: I/O); serialization failures and deadlocks;
 * and class 42 (an undefined table or column, a missing privilege): the projector's SQL is fixed text
 * with parameters, so these come from a release running before its migration, never from an event —
 * parking them would quarantine every tenant one by one.
 */
function isTransientSqlState(code: string): boolean {
  return ['08', '42', '53', '57', '58'].includes(code.slice(0, 2)) || code === '40001' || code === '40P01';
}

/** Node's socket and DNS errors (no SQLSTATE: the server never answered). */
const SOCKET_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * What node-postgres throws, without a code, when its connection is gone or cannot be had: its messages
 * from their start. Anywhere else in a message the words may quote a tenant's data (a fold's schema
 * error names the unknown member `Connection terminated`), and that event would be retried for ever,
 * every tenant's events waiting behind it.
 */
const CONNECTION_MESSAGE =
  /^(?:Connection terminated|Client has encountered a connection error|Client was closed and is not queryable|timeout exceeded when trying to connect)/;
