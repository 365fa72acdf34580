import type { UpstreamOutcome } from './types.js';

/**
 * 501 Not Implemented is how a server answers a request method it does not recognise (RFC 9110 §15.6.2):
 * the client chose the method, so any client could otherwise eject a healthy target and open its
 * circuit for everyone (HAProxy's observe layer7 leaves it out for the same reason).
 */
const NOT_IMPLEMENTED = 501;

/**
 * Whether an exchange that was not cancelled counts for the target (true) or against it (false) in
 * passive health checks and the circuit: the origin's own doing (no connection, no head in time, a
 * reset, a body it cut after its head, a server error) is a failure; any other answer shows a working
 * target.
 */
export function isTargetSuccess(outcome: Exclude<UpstreamOutcome, { kind: 'cancelled' }>): boolean {
  if (outcome.kind !== 'response') return false;
  return outcome.status < 500 || outcome.status === NOT_IMPLEMENTED;
}
