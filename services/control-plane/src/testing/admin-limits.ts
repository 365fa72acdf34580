import pg from 'pg';
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

/** A tenant with one viewer (read access only) and one admin (a writer), and their tokens. */
export interface TenantWithViewerAndAdmin {
  tenantId: string;
  /** The event position of the tenant's creation. */
  createdAt: string;
  /** The event position of the last user added: a read at it sees both users. */
  usersAddedAt: string;
  viewer: string;
  admin: string;
}

/**
 * Tenant `name` on `subdomain`, with users `user_<users>_viewer` and `user_<users>_admin` of those roles
 * (as the platform admin adds them).
 */
export async function createTenantWithViewerAndAdmin(
  cp: ControlPlaneHarness,
  name: string,
  subdomain: string,
  users: string,
): Promise<TenantWithViewerAndAdmin> {
  const created = await cp.request('POST', '/api/v1/tenants', { body: { name, subdomain } });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  const tenantId = String(json(created)['id']);
  let usersAddedAt = '';
  for (const role of ['viewer', 'admin'] as const) {
    usersAddedAt = await addTenantUser(cp, tenantId, `user_${users}_${role}`, role);
  }
  return {
    tenantId,
    createdAt: created.headers.get('x-event-position') ?? '',
    usersAddedAt,
    viewer: await cp.token({ userId: `user_${users}_viewer` }),
    admin: await cp.token({ userId: `user_${users}_admin` }),
  };
}

/** Adds Clerk user `userId` to the tenant's users with `role`: the event position of the change. */
export async function addTenantUser(
  cp: ControlPlaneHarness,
  tenantId: string,
  userId: string,
  role: 'viewer' | 'admin',
): Promise<string> {
  const added = await cp.request('POST', '/api/v1/users', {
    body: { tenant_id: tenantId, clerk_user_id: userId, email: `${userId}@roles.test`, role },
  });
  expect(added.status, JSON.stringify(added.body)).toBe(201);
  return added.headers.get('x-event-position') ?? '';
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
 * `answers` holds `admitted` answered 200; each of the others is a 429 admin_rate_limited for `field` and
 * `issue` (see expectAdminRateLimited).
 */
export function expectAdmittedThenRefused(
  answers: readonly ApiResponse[],
  admitted: number,
  field: string,
  issue: string,
): void {
  expect(answers.filter((answer) => answer.status === 200)).toHaveLength(admitted);
  for (const refused of answers.filter((answer) => answer.status !== 200)) {
    expectAdminRateLimited(refused, field, issue);
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

/**
 * Runs `run` with `table` locked by a connection of its own (`blocker`, see lockReadModel), which is
 * closed after it, the lock with it.
 */
export async function withReadModelLocked<T>(
  cp: ControlPlaneHarness,
  table: ReadModelTable,
  run: (blocker: pg.Client) => Promise<T>,
): Promise<T> {
  const blocker = new pg.Client({ connectionString: cp.db.url });
  await blocker.connect();
  try {
    await lockReadModel(blocker, table);
    return await run(blocker);
  } finally {
    await blocker.end();
  }
}

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

/**
 * Sends `count` copies of the slow read `send` at once (one caller filling its share of the places);
 * returns once each is answered or waiting for the lock `blocker` holds on `table` (see
 * sendUntilAnsweredOrBlocked).
 */
export function sendSlowReads(
  blocker: pg.Client,
  table: ReadModelTable,
  count: number,
  send: () => Promise<ApiResponse>,
  waitingBefore = 0,
): Promise<SentRequests> {
  return sendUntilAnsweredOrBlocked(
    blocker,
    Array.from({ length: count }, () => send),
    waitingBefore,
    table,
  );
}
