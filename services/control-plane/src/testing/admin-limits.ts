import type pg from 'pg';
import { expect } from 'vitest';
import { type ApiResponse, type ControlPlaneHarness, json } from './control-plane-harness.js';

/** A tenant of Clerk organisation `org`, on a subdomain of its own each run: its id. */
export async function createOrgTenant(cp: ControlPlaneHarness, name: string, org: string): Promise<string> {
  const created = await cp.request('POST', '/api/v1/tenants', {
    body: { name, subdomain: `${name}-${Date.now()}`, clerk_org_id: org },
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  return String(json(created)['id']);
}

/** `response` is a 429 admin_rate_limited whose first detail is `field` and `issue`, retry in 1 s. */
export function expectAdminRateLimited(response: ApiResponse, field: string, issue: string): void {
  expect(response.status, JSON.stringify(response.body)).toBe(429);
  const error = json(response)['error'] as { code: string; details: Array<{ field: string; issue: string }> };
  expect(error.code).toBe('admin_rate_limited');
  expect(error.details[0]).toEqual({ field, issue });
  expect(response.headers.get('retry-after')).toBe('1');
}

/** Returns once `token` reads `tenantId`'s routes: the read models show the caller's access to it. */
export async function untilReadable(cp: ControlPlaneHarness, token: string, tenantId: string): Promise<void> {
  while ((await cp.request('GET', `/api/v1/routes?tenant_id=${tenantId}`, { token })).status !== 200) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The read model tables a test may hold locked: each read of one waits while it is. */
export type ReadModelTable = 'read_models.audit_log' | 'read_models.custom_domains' | 'usage_counts';

/**
 * How many statements wait for the lock `blocker` holds on `table`: each a slow read holding a pooled
 * connection. pg_locks, not pg_stat_activity: the latter is one snapshot for the blocker's whole
 * transaction.
 */
export async function readModelLockWaiters(blocker: pg.Client, table: ReadModelTable): Promise<number> {
  const { rows } = await blocker.query<{ n: number }>(
    'select count(*)::int as n from pg_locks where relation = $1::regclass and not granted',
    [table],
  );
  return rows[0]?.n ?? 0;
}

/** How many statements wait for the lock `blocker` holds on the audit log read model. */
export const auditLogLockWaiters = (blocker: pg.Client) =>
  readModelLockWaiters(blocker, 'read_models.audit_log');

/**
 * Opens a transaction on `blocker` holding `table` locked: a read of it waits, holding its pooled
 * connection, until `blocker` rolls back.
 */
export async function lockReadModel(blocker: pg.Client, table: ReadModelTable): Promise<void> {
  await blocker.query('begin');
  await blocker.query(`lock table ${table} in access exclusive mode`);
}

/** Opens a transaction on `blocker` holding the audit log read model locked (see lockReadModel). */
export const lockAuditLog = (blocker: pg.Client) => lockReadModel(blocker, 'read_models.audit_log');

/** Requests sent at once, not all answered yet. */
export interface SentRequests {
  readonly requests: Array<Promise<ApiResponse>>;
  /** How many of them are answered by now. */
  answered(): number;
}

/**
 * Sends every request of `sends` at once; returns once each one is either answered or waiting for the
 * lock `blocker` holds on `table` (besides `waitingBefore` requests sent before).
 */
export async function sendUntilAnsweredOrBlocked(
  blocker: pg.Client,
  sends: ReadonlyArray<() => Promise<ApiResponse>>,
  waitingBefore = 0,
  table: ReadModelTable = 'read_models.audit_log',
): Promise<SentRequests> {
  let answered = 0;
  const requests = sends.map((send) =>
    send().finally(() => {
      answered += 1;
    }),
  );
  await expect
    .poll(async () => answered + (await readModelLockWaiters(blocker, table)), { timeout: 20_000 })
    .toBe(waitingBefore + requests.length);
  return { requests, answered: () => answered };
}
