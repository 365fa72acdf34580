import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import express from 'express';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Authorizer } from '../auth/authorize.js';
import type { Caller } from '../auth/caller.js';
import { createErrorHandler } from '../http/errors.js';
import { createQueryRouter } from './router.js';

/**
 * Regression test: an admin read runs with a statement timeout, so one that PostgreSQL cannot answer
 * soon (here: blocked behind a lock, standing in for a page that reads millions of rows) frees its
 * pool connection and answers 503 `read_timeout`, instead of holding the connection as long as
 * PostgreSQL takes.
 */

const tenant = randomUUID();
const alice: Caller = { userId: 'user_alice', isPlatformAdmin: false, orgId: null, orgRole: null };
const authorizer: Authorizer = { access: async () => 'write' };

let db: TestDatabase;
let server: Server;
let baseUrl: string;

beforeAll(async () => {
  db = await createTestDatabase();
  await db.pool.query(
    `insert into read_models.tenants (id, name, subdomain, settings, created_at, updated_at, revision,
       position, created_position)
     values ($1, 'acme', 'acme', '{}', now(), now(), 0, 1, 1)`,
    [tenant],
  );
  const app = express();
  app.use((_req, res, next) => {
    res.locals['caller'] = alice;
    next();
  });
  app.use(createQueryRouter({ pool: db.pool, authorizer, readStatementTimeoutMs: 200 }));
  app.use(createErrorHandler());
  server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
  await db?.drop();
});

describe('admin reads', () => {
  it.each([
    ['audit log', 'audit_log', `/api/v1/audit-log?tenant_id=${tenant}`],
    ['route list', 'routes', `/api/v1/routes?tenant_id=${tenant}`],
  ])('%s: cut off by the read statement timeout, 503 read_timeout', async (_name, table, path) => {
    const locker: pg.PoolClient = await db.pool.connect();
    await locker.query(`begin; lock table read_models.${table} in access exclusive mode`);
    try {
      const response = await fetch(`${baseUrl}${path}`, { signal: AbortSignal.timeout(5_000) });
      expect(response.status).toBe(503);
      const body = (await response.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('read_timeout');
      expect(body.error.message).toContain('CONTROL_PLANE_READ_STATEMENT_TIMEOUT_MS');
      expect(response.headers.get('retry-after')).toBe('1');
    } finally {
      await locker.query('rollback');
      locker.release();
    }
  });

  it('answers as before once nothing holds it up', async () => {
    const response = await fetch(`${baseUrl}/api/v1/audit-log?tenant_id=${tenant}`);
    expect(response.status).toBe(200);
    // The timeout was the transaction's own: the pooled connection has none.
    const { rows } = await db.pool.query<{ statement_timeout: string }>('show statement_timeout');
    expect(rows[0]?.statement_timeout).toBe('0');
  });
});
