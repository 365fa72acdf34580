import type { AddressInfo } from 'node:net';
import { createServer, type Server, type Socket } from 'node:net';
import { createRedisClient, type RedisClient } from '@vantageedge/shared/redis/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlPlaneHarness, json, startControlPlane } from '../testing/control-plane-harness.js';

/**
 * A command's `?wait_for_rollout=` and the rollout status when the gateways' heartbeats cannot be read
 * (Redis down or too slow): the command is stored all the same, so its answer is never an error.
 */
let cp: ControlPlaneHarness;
let redis: RedisClient;
let silentRedis: Server;
const silentConnections = new Set<Socket>();

beforeAll(async () => {
  // Accepts connections and never answers: every command times out, as on an overloaded Redis.
  silentRedis = createServer((socket) => {
    silentConnections.add(socket);
  });
  await new Promise<void>((resolve) => silentRedis.listen(0, '127.0.0.1', resolve));
  const { port } = silentRedis.address() as AddressInfo;
  redis = createRedisClient({ url: `redis://127.0.0.1:${port}`, commandTimeoutMs: 50, name: 'rollout-test' });
  cp = await startControlPlane({ rolloutRedis: redis });
});

afterAll(async () => {
  redis?.disconnect();
  await cp?.close();
  for (const socket of silentConnections) socket.destroy();
  await new Promise((resolve) => silentRedis?.close(resolve));
});

/** A tenant the snapshot projector has seen, so its rollout status is read from the heartbeats. */
async function liveTenant(subdomain: string): Promise<string> {
  const created = await cp.request('POST', '/api/v1/tenants', { body: { name: subdomain, subdomain } });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  const tenantId = json(created)['id'] as string;
  await cp.db.pool.query(
    `insert into snapshot_state (tenant_id, version, status, snapshot, event_time) values ($1, 1, 'live', '{}', now())`,
    [tenantId],
  );
  return tenantId;
}

describe('rollout status that cannot be read', () => {
  it('a command waiting for its rollout is stored and answered 202 with X-Rollout: unknown', async () => {
    const tenantId = await liveTenant('unreadable-rollout');
    const renamed = await cp.request('PATCH', `/api/v1/tenants/${tenantId}?wait_for_rollout=300ms`, {
      body: { name: 'Renamed While Redis Was Down' },
    });
    expect(renamed.status, JSON.stringify(renamed.body)).toBe(202);
    expect(renamed.headers.get('x-rollout')).toBe('unknown');
    expect(json(renamed)['resource']).toMatchObject({ id: tenantId, name: 'Renamed While Redis Was Down' });
    const events = await cp.allEvents();
    expect(events.filter((event) => event.stream.endsWith(tenantId)).map((event) => event.type)).toEqual([
      'TenantCreated',
      'TenantUpdated',
    ]);
  });

  it('GET rollout answers 503 rollout_status_unavailable with Retry-After, waiting or not', async () => {
    const tenantId = await liveTenant('unreadable-status');
    for (const query of ['', '?wait_for_rollout=200ms']) {
      const status = await cp.request('GET', `/api/v1/tenants/${tenantId}/rollout${query}`);
      expect(status.status, JSON.stringify(status.body)).toBe(503);
      expect(json(status)['error']).toMatchObject({ code: 'rollout_status_unavailable' });
      expect(status.headers.get('retry-after')).toBe('1');
    }
  });
});
