import type { AddressInfo } from 'node:net';
import { createRedisClient, type RedisClient } from '@vantageedge/shared/redis/client';
import express from 'express';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Caller } from '../auth/caller.js';
import { createErrorHandler } from '../http/errors.js';
import { createRolloutRouter } from './rollout-router.js';

/**
 * Regression: a rollout status that could not be read answered 503 with the driver's message, so any
 * tenant admin read the platform's database address (and, from other drivers' messages, its user and
 * database names) in `error.message`. The reason goes to the log; the answer only says it failed.
 */
describe('rollout status that cannot be read, as a tenant admin sees it', () => {
  let server: ReturnType<express.Express['listen']>;
  let pool: pg.Pool;
  let redis: RedisClient;
  const logged: unknown[] = [];

  beforeAll(async () => {
    // Nothing listens on port 1: every query fails with the driver's "connect ECONNREFUSED 127.0.0.1:1".
    pool = new pg.Pool({ connectionString: 'postgres://platform_owner@127.0.0.1:1/vantageedge_prod' });
    redis = createRedisClient({ url: 'redis://127.0.0.1:1', name: 'rollout-unit-test' });
    const app = express();
    app.use((_req, res, next) => {
      res.locals['caller'] = {
        userId: 'user_tenant_admin',
        orgId: null,
        orgRole: null,
        isPlatformAdmin: false,
      } satisfies Caller;
      next();
    });
    app.use(
      createRolloutRouter({
        pool,
        redis,
        authorizer: { access: async () => 'read' },
        onUnreadable: (error) => logged.push(error),
      }),
    );
    app.use(createErrorHandler());
    server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
  });

  afterAll(async () => {
    server?.close();
    redis?.disconnect();
    await pool?.end();
  });

  it('answers 503 rollout_status_unavailable without the driver error, which goes to the log', async () => {
    const { port } = server.address() as AddressInfo;
    const tenantId = '0b6d3c1e-4a39-4a5e-9d0f-2f4b9c1d7e11';
    for (const query of ['', '?wait_for_rollout=100ms']) {
      const answer = await fetch(`http://127.0.0.1:${port}/api/v1/tenants/${tenantId}/rollout${query}`);
      expect(answer.status).toBe(503);
      const body = (await answer.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('rollout_status_unavailable');
      expect(body.error.message).not.toMatch(/ECONNREFUSED|127\.0\.0\.1|:1\b/);
    }
    expect(String(logged[0])).toContain('ECONNREFUSED');
  });
});
