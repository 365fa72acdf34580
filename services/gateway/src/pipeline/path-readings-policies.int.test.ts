import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryLimitStore } from '../ratelimit/memory-limit-store.js';
import { createRateLimitStage } from '../ratelimit/rate-limit-stage.js';
import { createRateLimiter } from '../ratelimit/rate-limiter.js';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * Regression tests: another reading of a path (here letter case, which Express ignores) reached a route
 * whose IP rules or rate limit the route matched as written did not have. Only authentication counted
 * as protection, so with every route public `/api/Admin/users` reached the Express origin's admin
 * handler from outside its IP allow list, and `/api/Users/1` was never limited by `/api/users/*`.
 * Then limits written alike counted as the same protection, though each route counts on its own
 * counters: with `/api/*` limited like `/api/users/*`, `/api/Users/1` spent the counter of `/api/*`,
 * and a client had each route's allowance for the users handler.
 */
let origin: Server;
let gateway: TestGateway;
let handled: string[];

beforeAll(async () => {
  handled = [];
  const app = express();
  app.get('/api/admin/users', (_req, res) => {
    handled.push('admin');
    res.json({ handler: 'admin' });
  });
  app.get('/api/users/:id', (_req, res) => {
    handled.push('users');
    res.json({ handler: 'users' });
  });
  app.get('/api/posts', (_req, res) => {
    res.json({ handler: 'posts' });
  });
  origin = await new Promise<Server>((resolve) => {
    const server = app.listen(0, '127.0.0.1', () => resolve(server));
  });
  const logger = createLogger({ service: 'test', level: 'error' });
  const registry = createMetricsRegistry('path-readings-policies', { defaultMetrics: false });
  const limiter = createRateLimiter({ store: new MemoryLimitStore(), registry, logger });
  gateway = await startTestGateway({}, { stages: [createRateLimitStage(limiter)] });
  const originId = randomUUID();
  gateway.store.apply(
    buildSnapshot({
      subdomain: 'readings',
      origins: [{ id: originId, targets: [`http://127.0.0.1:${(origin.address() as AddressInfo).port}`] }],
      routes: [
        { origin_id: originId, path_pattern: '/api/*' },
        // The office only: the test's client (127.0.0.1) is outside.
        { origin_id: originId, path_pattern: '/api/admin/*', ip_rules: { allow: ['10.0.0.0/8'], deny: [] } },
        // One request per client, then a long wait.
        {
          origin_id: originId,
          path_pattern: '/api/users/*',
          rate_limit: { requests_per_second: 0.001, burst: 1, scope: 'ip' },
        },
      ],
    }),
  );
  // Every route limited alike: one request per client and route.
  gateway.store.apply(
    buildSnapshot({
      subdomain: 'readings-alike',
      origins: [{ id: originId, targets: [`http://127.0.0.1:${(origin.address() as AddressInfo).port}`] }],
      routes: ['/api/*', '/api/users/*'].map((path_pattern) => ({
        origin_id: originId,
        path_pattern,
        rate_limit: { requests_per_second: 0.001, burst: 1, scope: 'ip' },
      })),
    }),
  );
});

afterAll(async () => {
  await gateway?.close();
  await new Promise((resolve) => origin?.close(resolve));
});

describe('a path another reading of which reaches a route with IP rules or a rate limit', () => {
  it('gets that route’s IP rules: /api/Admin/users is refused outside the allow list', async () => {
    for (const path of ['/api/admin/users', '/api/Admin/users', '/api/ADMIN/users/'])
      expect((await send(gateway, 'readings.localhost', path)).status, path).toBe(403);
    expect(handled).not.toContain('admin');
  });

  it('gets that route’s rate limit: /api/Users/1 counts against /api/users/*', async () => {
    expect((await send(gateway, 'readings.localhost', '/api/users/1')).status).toBe(200);
    for (const path of ['/api/users/1', '/api/Users/1', '/api/USERS/1'])
      expect((await send(gateway, 'readings.localhost', path)).status, path).toBe(429);
  });
});

describe('a path another reading of which reaches a route limited like the route it matches', () => {
  it('never spends the other route’s counter: /api/Users/1 is refused once /api/users/* has refused', async () => {
    const host = 'readings-alike.localhost';
    expect((await send(gateway, host, '/api/users/1')).status).toBe(200);
    expect((await send(gateway, host, '/api/users/1')).status).toBe(429);
    const served = handled.filter((handler) => handler === 'users').length;
    const cased = await send(gateway, host, '/api/Users/1');
    expect(cased.status).toBe(403);
    expect(cased.json()['error']).toMatchObject({ code: 'ambiguous_path' });
    expect(handled.filter((handler) => handler === 'users')).toHaveLength(served);
    // The route the path matches as written keeps its own allowance for its own paths.
    expect((await send(gateway, host, '/api/posts')).status).toBe(200);
  });
});
