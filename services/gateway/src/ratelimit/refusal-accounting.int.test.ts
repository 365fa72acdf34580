import { randomUUID } from 'node:crypto';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  send,
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';
import type { LimitStore } from './limit-store.js';
import { createRateLimitStage } from './rate-limit-stage.js';
import { createRateLimiter } from './rate-limiter.js';

/**
 * Regression test: the rate limit's refusals were counted in error_responses_total as the origin's
 * answers (`code="origin"`) and logged with no error_code, so a fail-closed limit answering 503 while
 * Redis was away looked like the tenant's origin failing: the platform's own failure paged no one, and
 * the tenant was told its origin was down.
 */
describe("a rate limit's refusals in the metrics and the access log", () => {
  const tenantId = randomUUID();
  const host = 'refusals.localhost';
  let origin: TestOrigin;
  let gateway: TestGateway;

  beforeAll(async () => {
    origin = await startTestOrigin('refusal-accounting-origin');
    // Redis away: every store call fails, so limits decide locally (open) or refuse (closed).
    const unreachable: LimitStore = { consume: () => Promise.reject(new Error('connect ECONNREFUSED')) };
    const limiter = createRateLimiter({
      store: unreachable,
      registry: createMetricsRegistry('refusal_accounting', { defaultMetrics: false }),
      logger: createLogger({ service: 'test', level: 'error' }),
    });
    gateway = await startTestGateway({}, { stages: [createRateLimitStage(limiter)] });
    const originId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        tenantId,
        subdomain: 'refusals',
        origins: [{ id: originId, targets: [origin.url] }],
        routes: [
          {
            origin_id: originId,
            path_pattern: '/open/*',
            rate_limit: { requests_per_second: 0.001, burst: 1, on_store_failure: 'open' },
          },
          {
            origin_id: originId,
            path_pattern: '/closed/*',
            rate_limit: { requests_per_second: 100, burst: 100, on_store_failure: 'closed' },
          },
        ],
      }),
    );
  });

  afterAll(async () => {
    await gateway?.close();
    await origin?.close();
  });

  async function errorCount(status: string, code: string): Promise<number> {
    const text = await gateway.registry.metrics();
    const line = text
      .split('\n')
      .find(
        (l) =>
          l.startsWith('vantageedge_gateway_error_responses_total{') &&
          l.includes(`tenant="${tenantId}"`) &&
          l.includes(`status="${status}"`) &&
          l.includes(`code="${code}"`),
      );
    return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
  }

  async function answered(path: string): Promise<{ status: number; errorCode: unknown }> {
    const requestId = randomUUID();
    const response = await send(gateway, host, path, { headers: { 'x-request-id': requestId } });
    const line = await vi.waitFor(
      () => {
        const found = gateway.logLines.find((l) => l['kind'] === 'access' && l['request_id'] === requestId);
        if (found === undefined) throw new Error(`no access-log line for ${requestId} yet`);
        return found;
      },
      { timeout: 5_000 },
    );
    return { status: response.status, errorCode: line['error_code'] };
  }

  it('counts and logs a 429 under rate_limited, never as the origin', async () => {
    expect((await answered('/open/a')).status).toBe(200);
    expect(await answered('/open/a')).toEqual({ status: 429, errorCode: 'rate_limited' });
    expect(await errorCount('429', 'rate_limited')).toBe(1);
    expect(await errorCount('429', 'origin')).toBe(0);
  });

  it('counts and logs a fail-closed 503 under rate_limit_unavailable, never as the origin', async () => {
    expect(await answered('/closed/a')).toEqual({ status: 503, errorCode: 'rate_limit_unavailable' });
    expect(await errorCount('503', 'rate_limit_unavailable')).toBe(1);
    expect(await errorCount('503', 'origin')).toBe(0);
    expect(origin.seen.filter((r) => r.url.startsWith('/closed/'))).toEqual([]);
  });
});
