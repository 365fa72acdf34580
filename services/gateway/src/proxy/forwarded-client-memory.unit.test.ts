import { compileRateLimits } from '@vantageedge/shared/gateway-policies/compile-rate-limits';
import { ClientAddressResolver } from '@vantageedge/shared/net/client-address';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { liveHeapBytes } from '@vantageedge/shared/testing/live-memory';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { AuthFailureLimiter } from '../auth/auth-failure-limiter.js';
import { MemoryLimitStore } from '../ratelimit/memory-limit-store.js';
import { createRateLimiter } from '../ratelimit/rate-limiter.js';
import { buildSnapshot } from '../testing/snapshots.js';

const LOAD_BALANCER = '10.0.0.7';
const resolver = new ClientAddressResolver(['10.0.0.0/8']);
const HEADER_CHARS = 16_000;
const CLIENTS = 2_000;

/**
 * The X-Forwarded-For a load balancer hands over for a client that sent a header-sized one of its own:
 * the client's entries, then the address the balancer saw. Flat, one byte a character, as node's
 * parser makes it.
 */
function forwardedFor(client: string): string {
  return Buffer.from(`${'9'.repeat(HEADER_CHARS)}, ${client}`, 'latin1').toString('latin1');
}

/** The i-th client, an IPv4 address long enough (14 characters) that a cut of it is not copied. */
function clientAddress(i: number): string {
  return `198.51.${100 + (i % 100)}.${100 + Math.floor(i / 100)}`;
}

async function retainedBytes(remember: (clientIp: string) => unknown): Promise<number> {
  const before = liveHeapBytes({ collections: 1 });
  for (let i = 0; i < CLIENTS; i++) {
    const { clientIp } = resolver.fromPeer(LOAD_BALANCER, forwardedFor(clientAddress(i)));
    expect(clientIp).toBe(clientAddress(i));
    await remember(clientIp);
  }
  return liveHeapBytes({ collections: 1 }) - before;
}

// Clients behind a trusted load balancer choose all of X-Forwarded-For but the last entries; what a
// replica remembers per client address must not keep the rest of that header alive with it.
describe('client addresses read from X-Forwarded-For', () => {
  it('keep none of the header in the failed-authentication counts', async () => {
    const limiter = new AuthFailureLimiter({ maxPerMinute: 100 });
    const retained = await retainedBytes((clientIp) =>
      limiter.recordFailure('tenant-a', clientIp, 'invalid_api_key'),
    );
    // Kept with the header: CLIENTS × HEADER_CHARS (32 MB); without it, a few hundred bytes a client.
    expect(retained).toBeLessThan((CLIENTS * HEADER_CHARS) / 10);
    expect(limiter.refusedForSeconds('tenant-a', clientAddress(0))).toBe(0);
  });

  it('keep none of the header in the rate limits counted per address', async () => {
    const limiter = createRateLimiter({
      store: new MemoryLimitStore(),
      registry: new Registry(),
      logger: createLogger({ service: 'test', level: 'error' }),
    });
    const originId = '00000000-0000-4000-8000-000000000001';
    const snapshot = buildSnapshot({
      subdomain: 'forwarded',
      origins: [{ id: originId, targets: ['http://127.0.0.1:1'] }],
      routes: [
        {
          origin_id: originId,
          path_pattern: '/*',
          rate_limit: { requests_per_second: 1, burst: 5, scope: 'ip', accuracy: 'fast' },
        },
      ],
    });
    const limits = compileRateLimits(snapshot.tenant, snapshot.routes[0]!);
    const retained = await retainedBytes((clientIp) =>
      limiter.check(limits, { tenantId: limits.tenantId, routeId: limits.routeId, clientIp }),
    );
    expect(retained).toBeLessThan((CLIENTS * HEADER_CHARS) / 10);
  });
});
