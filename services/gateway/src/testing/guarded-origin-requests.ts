import {
  ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK,
  OriginAddressPolicy,
} from '@vantageedge/shared/net/origin-address-policy';
import { Agent, request } from 'undici';
import { createGuardedConnector } from '../upstream/guarded-connector.js';
import type { OriginTlsSettings } from '../upstream/origin-tls.js';

/**
 * One GET of `url` over the guarded connector, as every origin connection makes it (pools, probes,
 * WebSockets, JWKS), with an origin's compiled TLS settings; loopback origins allowed.
 */
export async function getThroughGuardedConnector(
  url: string,
  tls: OriginTlsSettings,
): Promise<{ status: number; body: string }> {
  const policy = new OriginAddressPolicy(ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK, []);
  const agent = new Agent({ connect: createGuardedConnector(policy, { timeout: 5_000 }, undefined, tls) });
  try {
    const response = await request(url, { dispatcher: agent });
    return { status: response.statusCode, body: await response.body.text() };
  } finally {
    await agent.close();
  }
}

/** What `promise` rejects with; undefined when it resolves. */
export const failureOf = (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    () => undefined,
    (error: unknown) => error,
  );
