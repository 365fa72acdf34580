import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import type { RateLimitDecision } from './rate-limiter.js';
import { applyRateLimitHeaders, writeRateLimitRejection } from './rejection.js';

describe('writeRateLimitRejection', () => {
  let decision: RateLimitDecision = { outcome: 'allowed', headers: [], degraded: false };
  const server: Server = createServer((_req, res) => {
    if (decision.outcome === 'allowed') {
      applyRateLimitHeaders(res, decision);
      res.end('ok');
    } else writeRateLimitRejection(res, decision);
  });
  const listening = new Promise<number>((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)),
  );
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('answers 429 with Retry-After, the RateLimit headers and a JSON error', async () => {
    decision = {
      outcome: 'limited',
      limitedBy: 'route',
      retryAfterSeconds: 3,
      degraded: false,
      headers: [
        ['RateLimit-Policy', '"route";q=10;w=1'],
        ['RateLimit', '"route";r=0;t=3'],
        ['Retry-After', '3'],
      ],
    };
    const response = await fetch(`http://127.0.0.1:${await listening}/`);
    expect(response.status).toBe(429);
    expect(response.headers.get('retry-after')).toBe('3');
    expect(response.headers.get('ratelimit')).toBe('"route";r=0;t=3');
    expect(response.headers.get('ratelimit-policy')).toBe('"route";q=10;w=1');
    expect(await response.json()).toEqual({ error: { code: 'rate_limited', message: expect.any(String) } });
  });

  // Regression test: the 503 had no Retry-After, so a client could only guess when to come back.
  it('answers 503 with Retry-After: 1 (Redis is tried again within a second) when the store is down and the limit fails closed', async () => {
    decision = { outcome: 'store_unavailable', headers: [] };
    const response = await fetch(`http://127.0.0.1:${await listening}/`);
    expect(response.status).toBe(503);
    expect(response.headers.get('retry-after')).toBe('1');
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe(
      'rate_limit_unavailable',
    );
  });
});
