import { TEST_INFRA, uniqueSuffix } from '@vantageedge/shared/testing/infrastructure';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlPlaneHarness, json, startControlPlane } from '../testing/control-plane-harness.js';

/**
 * An Idempotency-Key on a command that waits for its rollout (`?wait_for_rollout=`, up to 60 s). Its
 * events are stored before the wait; the key must stay the request's until its answer is stored, or a
 * client retrying after its own timeout takes the key over, finds the events and gets 409
 * idempotency_answer_lost for good: an issued API key's plaintext, in the answer the first request was
 * still waiting to give, would be lost.
 */
let cp: ControlPlaneHarness;
let redis: Redis;
let tenantId: string;
let admin: string;
const ORG = 'org_idempotent_rollout';

beforeAll(async () => {
  // Heartbeats of no other test's gateways: no replica is live, so the rollout is complete as soon as
  // the snapshot state holds the change.
  redis = new Redis(TEST_INFRA.redisUrl, { keyPrefix: `ve-test-${uniqueSuffix()}:` });
  cp = await startControlPlane({ rolloutRedis: redis });
  const created = await cp.request('POST', '/api/v1/tenants', {
    body: { name: 'Rollout Keys', subdomain: 'idempotent-rollout', clerk_org_id: ORG },
  });
  expect(created.status).toBe(201);
  tenantId = json(created)['id'] as string;
  admin = await cp.token({ userId: 'user_idempotent_rollout', orgId: ORG, orgRole: 'admin' });
}, 60_000);

afterAll(async () => {
  await cp?.close();
  redis?.disconnect();
});

/** The position of the tenant's API key issued so far, once it is stored. */
async function issuedKeyPosition(): Promise<bigint> {
  for (;;) {
    const issued = (await cp.allEvents()).find(
      (event) => event.type === 'ApiKeyIssued' && event.metadata.tenant_id === tenantId,
    );
    if (issued) return issued.position;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The snapshot projector folded the tenant up to `position`: the rollout of the change is complete. */
async function rolledOut(position: bigint): Promise<void> {
  await cp.db.pool.query(
    `insert into snapshot_state (tenant_id, version, status, snapshot, event_time) values ($1, $2, 'live', '{}', now())`,
    [tenantId, position.toString()],
  );
  await cp.db.pool.query(
    `insert into projection_checkpoints (name, position) values ('gateway_snapshots', $1)
     on conflict (name) do update set position = excluded.position`,
    [position.toString()],
  );
}

describe('Idempotency-Key on a command waiting for its rollout', () => {
  it('a retry while the first request waits is told to come back once the wait is over, then gets its answer', async () => {
    const issue = () =>
      cp.request('POST', '/api/v1/api-keys?wait_for_rollout=50s', {
        token: admin,
        body: { tenant_id: tenantId, name: 'deploy' },
        headers: { 'idempotency-key': 'issue-deploy-key' },
      });
    const first = issue();
    const position = await issuedKeyPosition();

    const retry = await issue();
    expect(retry.status).toBe(409);
    expect(json(retry)).toMatchObject({ error: { code: 'conflict' } });
    // The first request may wait 50 s for its rollout: a retry sooner would take the key over and find
    // its events stored without an answer.
    expect(Number(retry.headers.get('retry-after'))).toBeGreaterThanOrEqual(50);

    await rolledOut(position);
    const answered = await first;
    expect(answered.status).toBe(201);
    expect(answered.headers.get('x-rollout')).toBe('complete');

    // Retry-After seconds later: the first request's own answer, API key plaintext included.
    await cp.db.pool.query(
      `update control_plane_idempotency_keys set locked_until = now() - interval '1 second' where key = $1`,
      ['issue-deploy-key'],
    );
    const later = await issue();
    expect(later.status).toBe(201);
    expect(later.headers.get('idempotent-replayed')).toBe('true');
    expect(json(later)['key']).toBe(json(answered)['key']);
  });
});
