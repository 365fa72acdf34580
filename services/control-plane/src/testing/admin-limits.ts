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

/**
 * How many statements wait for the lock `blocker` holds on the audit log read model: each a slow read
 * holding a pooled connection. pg_locks, not pg_stat_activity: the latter is one snapshot for the
 * blocker's whole transaction.
 */
export async function auditLogLockWaiters(blocker: pg.Client): Promise<number> {
  const { rows } = await blocker.query<{ n: number }>(
    `select count(*)::int as n from pg_locks
      where relation = 'read_models.audit_log'::regclass and not granted`,
  );
  return rows[0]?.n ?? 0;
}

/**
 * Opens a transaction on `blocker` holding the audit log read model locked: a read of it waits, holding
 * its pooled connection, until `blocker` rolls back.
 */
export async function lockAuditLog(blocker: pg.Client): Promise<void> {
  await blocker.query('begin');
  await blocker.query('lock table read_models.audit_log in access exclusive mode');
}

/** Requests sent at once, not all answered yet. */
export interface SentRequests {
  readonly requests: Array<Promise<ApiResponse>>;
  /** How many of them are answered by now. */
  answered(): number;
}

/**
 * Sends every request of `sends` at once; returns once each one is either answered or waiting for the
 * audit log lock `blocker` holds (besides `waitingBefore` requests sent before).
 */
export async function sendUntilAnsweredOrBlocked(
  blocker: pg.Client,
  sends: ReadonlyArray<() => Promise<ApiResponse>>,
  waitingBefore = 0,
): Promise<SentRequests> {
  let answered = 0;
  const requests = sends.map((send) =>
    send().finally(() => {
      answered += 1;
    }),
  );
  await expect
    .poll(async () => answered + (await auditLogLockWaiters(blocker)), { timeout: 20_000 })
    .toBe(waitingBefore + requests.length);
  return { requests, answered: () => answered };
}
