import { ClientAddressResolver } from '@vantageedge/shared/net/client-address';
import { type FailureWindow, FailureWindows } from '@vantageedge/shared/net/failure-windows';
import { clientCountingKey } from '@vantageedge/shared/net/ip-address';
import type { RequestHandler } from 'express';
import { ApiError } from '../http/errors.js';

/** CONTROL_PLANE_AUTH_FAILURES_PER_MINUTE's default. */
export const DEFAULT_AUTH_FAILURES_PER_MINUTE = 60;

export interface AuthFailureLimitOptions {
  /** CONTROL_PLANE_AUTH_FAILURES_PER_MINUTE: rejected credentials per client address and minute (0: off). */
  perMinute: number;
  /** CONTROL_PLANE_TRUSTED_PROXIES: from these peers the client is the one X-Forwarded-For names. */
  trustedProxies: readonly string[];
  /** CONTROL_PLANE_CLIENT_IPV6_PREFIX: the network an IPv6 client is counted by (default: its /64). */
  ipv6Prefix?: number;
  /** Most client addresses remembered (least recently seen forgotten first). Default 100,000. */
  maxClients?: number;
  /** The windows' clock (ms). */
  now?: () => number;
}

/**
 * Rejected credentials per client address (an IPv6 client by its /64, or CONTROL_PLANE_CLIENT_IPV6_PREFIX),
 * per replica and in memory, as
 * the gateway's limiter: every presented token costs a signature check (and, with CLERK_SECRET_KEY, the
 * signing-key gate), so an address at the bound in its current one-minute window gets 429
 * too_many_auth_failures before any verification, a valid token included, until that window ends.
 * A token being verified counts as a failure until it succeeds, so a burst cannot all pass the check
 * before the first one fails. Requests without a token cost nothing and are not counted.
 *
 * Returns two handlers: one before authentication (refuse or count) and one right after it (a
 * verified caller gives its count back).
 */
export function createAuthFailureLimit(
  options: AuthFailureLimitOptions,
  onRefused?: () => void,
): { beforeAuthentication: RequestHandler; authenticated: RequestHandler } {
  const resolver = new ClientAddressResolver(options.trustedProxies);
  const windows = new FailureWindows(options.maxClients ?? 100_000, options.now);
  const reserved = new WeakMap<object, FailureWindow>();

  const beforeAuthentication: RequestHandler = (req, res, next) => {
    if (options.perMinute <= 0 || !req.headers.authorization) {
      next();
      return;
    }
    const client = clientCountingKey(resolver.resolve(req).clientIp, options.ipv6Prefix);
    const refusedForMs = windows.refusedForMs(client, options.perMinute);
    if (refusedForMs > 0) {
      onRefused?.();
      next(
        new ApiError(
          429,
          'too_many_auth_failures',
          'too many rejected credentials from this address: try again after Retry-After seconds',
          [{ field: 'authorization', issue: `more than ${options.perMinute} rejected in a minute` }],
          { 'Retry-After': String(Math.ceil(refusedForMs / 1000)) },
        ),
      );
      return;
    }
    const window = windows.count(client);
    reserved.set(res, window);
    next();
  };
  const authenticated: RequestHandler = (_req, res, next) => {
    const window = reserved.get(res);
    // A window that has ended since was replaced: giving its slot back changes nothing.
    if (window !== undefined) window.failures--;
    reserved.delete(res);
    next();
  };
  return { beforeAuthentication, authenticated };
}
