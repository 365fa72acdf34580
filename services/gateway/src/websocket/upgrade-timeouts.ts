import { MAX_ORIGIN_CONNECT_TIMEOUT_MS } from '@vantageedge/shared/domain/gateway-config';
import type { RouteTimeouts } from '@vantageedge/shared/domain/route-policies';

/** How long an upgrade may take to reach its origin and get its answer's head. */
export interface UpgradeTimeouts {
  /** The connection to the target (DNS and TLS included). */
  readonly connectMs: number;
  /** The answer's head, counted from the upgrade's start (its connect included). */
  readonly answerMs: number;
  /**
   * A route's response_headers_ms: the answer's head within it of the connection having been made (an
   * upgrade has no body: it is sent whole then), as a request's head is timed.
   */
  readonly answerAfterConnectMs: number | undefined;
  /** The origin connection's idle time, which also bounds a relayed refusal's body. */
  readonly idleMs: number;
}

/**
 * The origin's timeout_seconds (`originTimeoutMs`), overridden by the route's own connect_ms and
 * response_headers_ms as for the route's requests.
 */
export function upgradeTimeouts(
  originTimeoutMs: number,
  route: RouteTimeouts | null | undefined,
): UpgradeTimeouts {
  const connectMs = route?.connect_ms ?? Math.min(originTimeoutMs, MAX_ORIGIN_CONNECT_TIMEOUT_MS);
  const headMs = route?.response_headers_ms;
  const answerMs = headMs === undefined ? Math.max(originTimeoutMs, connectMs) : connectMs + headMs;
  return { connectMs, answerMs, answerAfterConnectMs: headMs, idleMs: Math.max(originTimeoutMs, answerMs) };
}
