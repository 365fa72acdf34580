import { randomUUID } from 'node:crypto';
import { streamName } from '@vantageedge/shared/domain/events';
import type { EventStore } from '@vantageedge/shared/event-store/port';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlPlaneHarness, json, startControlPlane } from '../testing/control-plane-harness.js';
import { expectRefusedNamingField, expectTagFiltersRefused } from '../testing/refused-commands.js';
import { holdTenantLock } from '../testing/tenant-lock.js';

/**
 * Tags on API keys (Kong's tags on credentials): given at issue, changed by a PATCH with only `tags`,
 * kept by a rotation, returned by reads and filtered by `?tags=`, within the caller's tenants only.
 */

let h: ControlPlaneHarness;

const head = async () => (await h.store.headPosition()).toString();

async function createTenant(subdomain: string, clerkOrgId?: string): Promise<string> {
  const response = await h.request('POST', '/api/v1/tenants', {
    body: { name: subdomain, subdomain, ...(clerkOrgId ? { clerk_org_id: clerkOrgId } : {}) },
  });
  expect(response.status).toBe(201);
  return json(response)['id'] as string;
}

async function issueKey(tenantId: string, name: string, tags?: string[]): Promise<string> {
  const response = await h.request('POST', '/api/v1/api-keys', {
    body: { tenant_id: tenantId, name, ...(tags ? { tags } : {}) },
  });
  expect(response.status, JSON.stringify(response.body)).toBe(201);
  return json(response)['id'] as string;
}

async function listed(path: string, token?: string): Promise<string[]> {
  await h.readModelsCaughtUp();
  const response = await h.request('GET', path, token === undefined ? {} : { token });
  expect(response.status, JSON.stringify(response.body)).toBe(200);
  return (json(response)['data'] as Array<{ id: string }>).map((item) => item.id);
}

/** Resolved when the app next reads this stream (a request's step before it waits for a lock). */
let nextRead: { stream: string; done: () => void } | null = null;

function signallingReads(store: EventStore): EventStore {
  return new Proxy(store, {
    get(target, property, receiver) {
      if (property !== 'readStream') return Reflect.get(target, property, receiver);
      return async (stream: string, options?: Parameters<EventStore['readStream']>[1]) => {
        const events = await target.readStream(stream, options);
        if (nextRead?.stream === stream) {
          nextRead.done();
          nextRead = null;
        }
        return events;
      };
    },
  });
}

function readOf(stream: string): Promise<void> {
  return new Promise((done) => {
    nextRead = { stream, done };
  });
}

beforeAll(async () => {
  h = await startControlPlane({ withReadSide: true, wrapStore: signallingReads });
}, 60_000);

afterAll(async () => {
  await h?.close();
});

describe('tags on API keys', () => {
  it('refuses a bad tag or too many tags at issue and in a PATCH, naming the field; nothing is appended', async () => {
    const tenantId = await createTenant('key-tags-rules');
    const keyId = await issueKey(tenantId, 'ci');
    await expectRefusedNamingField(h, [
      ['POST', '/api/v1/api-keys', { tenant_id: tenantId, name: 'b', tags: ['team,a'] }, 'tags.0'],
      ['POST', '/api/v1/api-keys', { tenant_id: tenantId, name: 'b', tags: ['ok', 'a/b'] }, 'tags.1'],
      ['PATCH', `/api/v1/api-keys/${keyId}`, { tags: ['two words'] }, 'tags.0'],
      ['PATCH', `/api/v1/api-keys/${keyId}`, { tags: ['x'.repeat(65)] }, 'tags.0'],
      ['PATCH', `/api/v1/api-keys/${keyId}`, { tags: [''] }, 'tags.0'],
      ['PATCH', `/api/v1/api-keys/${keyId}`, { tags: ['same', 'same'] }, 'tags'],
      ['PATCH', `/api/v1/api-keys/${keyId}`, { tags: Array.from({ length: 17 }, (_, i) => `t${i}`) }, 'tags'],
      ['PATCH', `/api/v1/api-keys/${keyId}`, { tags: null }, 'tags'],
    ]);
  });

  it('keeps the tags an issue or a PATCH gives, without the secret again or touching the quota, and a rotation keeps them', async () => {
    const tenantId = await createTenant('key-tags-reads');
    const issued = await h.request('POST', '/api/v1/api-keys', {
      body: { tenant_id: tenantId, name: 'ci', tags: ['team-a', 'ci'], quota: { requests_per_day: 100 } },
    });
    expect(issued.status).toBe(201);
    expect(json(issued)['tags']).toEqual(['team-a', 'ci']);
    const keyId = json(issued)['id'] as string;
    await h.readModelsCaughtUp();
    expect(json(await h.request('GET', `/api/v1/api-keys/${keyId}`))['tags']).toEqual(['team-a', 'ci']);

    const patched = await h.request('PATCH', `/api/v1/api-keys/${keyId}`, { body: { tags: ['team-b'] } });
    expect(patched.status).toBe(200);
    expect(json(patched)).toMatchObject({ tags: ['team-b'], quota: { requests_per_day: 100 } });
    expect(json(patched)).not.toHaveProperty('key');
    await h.readModelsCaughtUp();
    const read = json(await h.request('GET', `/api/v1/api-keys/${keyId}`));
    expect(read).toMatchObject({ tags: ['team-b'], quota: { requests_per_day: 100 } });

    // The same tags again change nothing.
    const before = await head();
    expect(
      (await h.request('PATCH', `/api/v1/api-keys/${keyId}`, { body: { tags: ['team-b'] } })).status,
    ).toBe(200);
    expect(await head()).toBe(before);

    const rotated = await h.request('POST', `/api/v1/api-keys/${keyId}/rotate`, {
      body: { grace_period_seconds: 0 },
    });
    expect(rotated.status).toBe(201);
    expect(json(rotated)['tags']).toEqual(['team-b']);

    const both = await h.request('PATCH', `/api/v1/api-keys/${json(rotated)['id']}`, {
      body: { quota: null, tags: ['team-c'] },
    });
    expect(both.status).toBe(200);
    expect(json(both)).toMatchObject({ tags: ['team-c'], quota: null });

    const untagged = await issueKey(tenantId, 'plain');
    await h.readModelsCaughtUp();
    expect(json(await h.request('GET', `/api/v1/api-keys/${untagged}`))['tags']).toEqual([]);
  });

  // Regression test: a rotation read the key before it waited for the tenant's lock and issued the
  // replacement from that read, so a PATCH that held the lock first was undone on the new key.
  it('a rotation waiting for the lock behind a PATCH gives the replacement the tags and quota the PATCH set', async () => {
    const tenantId = await createTenant('key-tags-rotation-wait');
    const issued = await h.request('POST', '/api/v1/api-keys', {
      body: { tenant_id: tenantId, name: 'ci', tags: ['team-a'], quota: { requests_per_day: 100 } },
    });
    expect(issued.status).toBe(201);
    const keyId = json(issued)['id'] as string;
    const lock = await holdTenantLock(h.db.pool, tenantId);
    let patched: Awaited<ReturnType<typeof h.request>>;
    let rotated: Awaited<ReturnType<typeof h.request>>;
    try {
      const patch = h.request('PATCH', `/api/v1/api-keys/${keyId}`, {
        body: { tags: ['team-b'], quota: { requests_per_day: 10 } },
      });
      await lock.waitedFor(1);
      // The PATCH waits for the lock; the rotation reads the key, then queues behind the PATCH.
      const rotationRead = readOf(streamName.apiKey(keyId));
      const rotate = h.request('POST', `/api/v1/api-keys/${keyId}/rotate`, {
        body: { grace_period_seconds: 0 },
      });
      await rotationRead;
      await lock.release();
      [patched, rotated] = await Promise.all([patch, rotate]);
    } finally {
      await lock.release().catch(() => {});
    }
    expect(patched.status, JSON.stringify(patched.body)).toBe(200);
    expect(rotated.status, JSON.stringify(rotated.body)).toBe(201);
    expect(json(rotated)).toMatchObject({ tags: ['team-b'], quota: { requests_per_day: 10 } });
    await h.readModelsCaughtUp();
    const replacement = json(await h.request('GET', `/api/v1/api-keys/${json(rotated)['id']}`));
    expect(replacement).toMatchObject({ tags: ['team-b'], quota: { requests_per_day: 10 } });
  });

  it('lists the keys carrying every tag of a,b or any tag of a/b, and refuses a filter it cannot read', async () => {
    const tenantId = await createTenant('key-tags-lists');
    const both = await issueKey(tenantId, 'both', ['team-a', 'prod']);
    const teamA = await issueKey(tenantId, 'a', ['team-a']);
    const teamB = await issueKey(tenantId, 'b', ['team-b']);
    await issueKey(tenantId, 'none');
    const keys = `/api/v1/api-keys?tenant_id=${tenantId}`;
    expect(await listed(`${keys}&tags=team-a`)).toEqual([both, teamA]);
    expect(await listed(`${keys}&tags=team-a,prod`)).toEqual([both]);
    expect(await listed(`${keys}&tags=prod/team-b`)).toEqual([both, teamB]);
    expect(await listed(`${keys}&tags=nobody`)).toEqual([]);
    await expectTagFiltersRefused(h, keys);
  });

  it('reads a key issued before keys had tags as untagged, and tags it', async () => {
    const tenantId = await createTenant('key-tags-earlier');
    const [issued] = await h.store.readStream(streamName.apiKey(await issueKey(tenantId, 'template')));
    if (issued === undefined) throw new Error('no ApiKeyIssued');
    const { tags: _none, ...untagged } = issued.data as Record<string, unknown>;
    const keyId = randomUUID();
    await h.store.appendToStream(streamName.apiKey(keyId), [
      {
        type: 'ApiKeyIssued',
        data: { ...untagged, api_key_id: keyId, name: 'earlier', key_hash: 'a'.repeat(64) },
        metadata: issued.metadata,
      },
    ]);
    expect(await listed(`/api/v1/api-keys?tenant_id=${tenantId}&tags=x`)).toEqual([]);
    expect(json(await h.request('GET', `/api/v1/api-keys/${keyId}`))['tags']).toEqual([]);
    const patched = await h.request('PATCH', `/api/v1/api-keys/${keyId}`, { body: { tags: ['x'] } });
    expect(patched.status, JSON.stringify(patched.body)).toBe(200);
    expect(await listed(`/api/v1/api-keys?tenant_id=${tenantId}&tags=x`)).toEqual([keyId]);
  });

  it("never lists another tenant's keys carrying the tag to a tenant admin", async () => {
    const mine = await createTenant('key-tags-mine', 'org_key_tags_mine');
    const theirs = await createTenant('key-tags-theirs', 'org_key_tags_theirs');
    const own = await issueKey(mine, 'own', ['shared-tag']);
    await issueKey(theirs, 'other', ['shared-tag']);
    const admin = await h.token({
      userId: 'user_key_tags_admin',
      orgId: 'org_key_tags_mine',
      orgRole: 'admin',
    });
    expect(await listed('/api/v1/api-keys?tags=shared-tag', admin)).toEqual([own]);
    expect(await listed('/api/v1/api-keys?tags=shared-tag/other-tag', admin)).toEqual([own]);
    const refused = await h.request('GET', `/api/v1/api-keys?tenant_id=${theirs}&tags=shared-tag`, {
      token: admin,
    });
    expect(refused.status).toBe(404);
  });
});
